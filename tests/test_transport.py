"""Listening, dialling and hostile peers over real TCP on 127.0.0.1."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import pytest
from anyio.abc import SocketStream

from p2pswarm.connection import Connection
from p2pswarm.errors import (
    DialError,
    HandshakeError,
    HandshakeTimeoutError,
    P2PSwarmError,
    PeerBannedError,
    RemoteProtocolError,
)
from p2pswarm.keys import KeyPair
from p2pswarm.peer_record import AddressKind, PeerAddress, PeerRecord
from p2pswarm.protocol import SecretStream
from p2pswarm.transports._handshake import accept_handshake
from p2pswarm.transports.base import Dialer
from p2pswarm.transports.tcp import ConnectionListener, TCPDialer, connect_tcp, create_tcp_listener

pytestmark = pytest.mark.anyio

SERVER_KEYS = KeyPair.from_seed(b"\x5e" * 32)
TOPIC = b"\x42" * 32


@dataclass
class EchoServer:
    """Echoes every chunk back and records how each connection ended, by remote key."""

    listener: ConnectionListener
    endings: dict[bytes, tuple[object, bytes]] = field(default_factory=dict)
    ended: dict[bytes, anyio.Event] = field(default_factory=dict)
    topics: dict[bytes, tuple[bytes, ...]] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.listener.local_address[1]

    def event_for(self, key: bytes) -> anyio.Event:
        return self.ended.setdefault(key, anyio.Event())

    async def wait_ended(self, key: bytes) -> tuple[object, bytes]:
        with anyio.fail_after(10):
            await self.event_for(key).wait()
        return self.endings[key]

    async def handle(self, connection: Connection) -> None:
        key = connection.remote_public_key
        self.topics[key] = connection.remote_topics
        received = bytearray()
        outcome: object
        try:
            while True:
                chunk = await connection.receive()
                received += chunk
                # The echo may fail once a later frame broke the stream: keep reading
                # to collect the typed error.
                with contextlib.suppress(anyio.BrokenResourceError):
                    await connection.send(chunk)
        except anyio.EndOfStream:
            outcome = "end"
        except P2PSwarmError as exc:
            outcome = exc
        self.endings[key] = (outcome, bytes(received))
        self.event_for(key).set()


@asynccontextmanager
async def echo_server(**options: object) -> AsyncIterator[EchoServer]:
    listener = await create_tcp_listener(local_host="127.0.0.1", key_pair=SERVER_KEYS, **options)  # type: ignore[arg-type]
    server = EchoServer(listener)
    async with anyio.create_task_group() as group:
        group.start_soon(listener.serve, server.handle)
        try:
            yield server
        finally:
            await listener.aclose()


async def raw_handshake(
    port: int,
    key_pair: KeyPair,
    *,
    ik: bool = True,
    tamper_final: Callable[[bytes], bytes] | None = None,
    **machine_options: object,
) -> tuple[SocketStream, SecretStream]:
    """Handshake by hand over a raw socket, to misbehave afterwards."""
    stream = await anyio.connect_tcp("127.0.0.1", port)
    machine = SecretStream(
        initiator=True,
        key_pair=key_pair,
        remote_public_key=SERVER_KEYS.public_key if ik else None,
        **machine_options,  # type: ignore[arg-type]
    )
    await stream.send(machine.data_to_send())
    while not machine.handshake_complete:
        machine.receive_data(await stream.receive())
        outgoing = machine.data_to_send()
        if machine.handshake_complete and tamper_final is not None:
            outgoing = tamper_final(outgoing)
        if outgoing:
            await stream.send(outgoing)
    return stream, machine


async def assert_closed_by_server(stream: SocketStream) -> None:
    with anyio.fail_after(10):
        try:
            while await stream.receive():
                pass
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass
    await stream.aclose()


@asynccontextmanager
async def bystander(server: EchoServer) -> AsyncIterator[Connection]:
    """A healthy connection that must survive whatever another peer does."""
    connection = await connect_tcp(
        "127.0.0.1", server.port, remote_public_key=SERVER_KEYS.public_key
    )
    async with connection:
        await connection.send(b"before")
        assert await connection.receive() == b"before"
        yield connection
        await connection.send(b"after")
        assert await connection.receive() == b"after"


# -- the happy paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("ik", [True, False], ids=["IK", "XX"])
async def test_connect_tcp_to_a_listener(ik: bool) -> None:
    client_keys = KeyPair.generate()
    async with echo_server() as server:
        connection = await connect_tcp(
            "127.0.0.1",
            server.port,
            key_pair=client_keys,
            remote_public_key=SERVER_KEYS.public_key if ik else None,
            topics=(TOPIC,),
        )
        async with connection:
            assert connection.remote_public_key == SERVER_KEYS.public_key
            assert connection.remote_address == ("127.0.0.1", server.port)
            await connection.send(b"echo me")
            assert await connection.receive() == b"echo me"
            await connection.send_eof()
            with pytest.raises(anyio.EndOfStream):
                await connection.receive()
        assert await server.wait_ended(client_keys.public_key) == ("end", b"echo me")
        assert server.topics[client_keys.public_key] == (TOPIC,)


async def test_a_generated_key_pair_is_used_when_none_is_given() -> None:
    async with echo_server() as server:
        connection = await connect_tcp("127.0.0.1", server.port)
        async with connection:
            assert len(connection.public_key) == 32
            assert connection.public_key != SERVER_KEYS.public_key


async def test_listener_closes_the_connection_when_the_handler_returns() -> None:
    async def handler(connection: Connection) -> None:
        await connection.send(b"bye")

    listener = await create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, handler)
        host, port = listener.local_address
        connection = await connect_tcp(host, port)
        async with connection:
            assert await connection.receive() == b"bye"
            with pytest.raises(anyio.EndOfStream):
                await connection.receive()
        await listener.aclose()  # serve() returns


async def test_listener_accept_skips_failed_handshakes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="p2pswarm.transport")
    async with await create_tcp_listener(local_host="127.0.0.1") as listener:
        host, port = listener.local_address
        accepted: list[Connection] = []
        async with anyio.create_task_group() as group:

            async def accept() -> None:
                accepted.append(await listener.accept())

            group.start_soon(accept)
            garbage = await anyio.connect_tcp(host, port)
            await garbage.send(b"\x05\x00\x00hello")
            await assert_closed_by_server(garbage)
            client = await connect_tcp(host, port)
        async with client, accepted[0] as server_side:
            assert server_side.remote_public_key == client.public_key
    assert "handshake with 127.0.0.1" in caplog.text


# -- authorization -----------------------------------------------------------------------------


@pytest.mark.parametrize("ik", [True, False], ids=["IK", "XX"])
async def test_authorize_sees_key_address_topics_and_can_refuse(
    ik: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="p2pswarm.transport")
    banned, welcome = KeyPair.generate(), KeyPair.generate()
    calls: list[tuple[bytes, tuple[str, int], tuple[bytes, ...]]] = []

    async def authorize(key: bytes, address: tuple[str, int], topics: tuple[bytes, ...]) -> bool:
        calls.append((key, address, topics))
        await anyio.lowlevel.checkpoint()
        return key != banned.public_key

    async with echo_server(authorize=authorize) as server:
        remote = SERVER_KEYS.public_key if ik else None
        if ik:  # refused before the responder's only message
            with pytest.raises(HandshakeError):
                await connect_tcp(
                    "127.0.0.1",
                    server.port,
                    key_pair=banned,
                    remote_public_key=remote,
                    topics=(TOPIC,),
                )
        else:  # XX: the initiator is done after message 3; the refusal shows as a closed stream
            refused = await connect_tcp("127.0.0.1", server.port, key_pair=banned, topics=(TOPIC,))
            async with refused:
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await refused.receive()
        async with await connect_tcp(
            "127.0.0.1", server.port, key_pair=welcome, remote_public_key=remote
        ) as connection:
            await connection.send(b"let in")
            assert await connection.receive() == b"let in"
    assert [c[0] for c in calls] == [banned.public_key, welcome.public_key]
    assert calls[0][1][0] == "127.0.0.1" and calls[0][2] == (TOPIC,)
    assert "was refused" in caplog.text


async def test_accept_handshake_raises_peer_banned_with_a_sync_authorize() -> None:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as multi:
        (listener,) = multi.listeners
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: expect_handshake_error(port))
            raw = await listener.accept()  # type: ignore[attr-defined]
            with pytest.raises(PeerBannedError):
                await accept_handshake(
                    raw, key_pair=SERVER_KEYS, authorize=lambda key, address, topics: False
                )


async def expect_handshake_error(port: int) -> None:
    with pytest.raises(HandshakeError):
        await connect_tcp("127.0.0.1", port, remote_public_key=SERVER_KEYS.public_key)


# -- hostile peers during the handshake: logged, that socket closed, others unaffected ----------


def flip(index: int) -> Callable[[bytes], bytes]:
    def tamper(data: bytes) -> bytes:
        changed = bytearray(data)
        changed[index] ^= 1
        return bytes(changed)

    return tamper


async def send_raw_then_expect_close(port: int, data: bytes) -> None:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    await stream.send(data)
    await assert_closed_by_server(stream)


def first_message(ik: bool = True, **options: object) -> bytes:
    return SecretStream(
        initiator=True,
        key_pair=KeyPair.generate(),
        remote_public_key=SERVER_KEYS.public_key if ik else None,
        **options,  # type: ignore[arg-type]
    ).data_to_send()


@pytest.mark.parametrize(
    "make_bytes",
    [
        pytest.param(lambda: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="garbage"),
        pytest.param(lambda: b"\xff\xff\xff" + b"\x00" * 100, id="oversized-frame"),
        pytest.param(lambda: flip(40)(first_message()), id="tampered"),
        pytest.param(lambda: first_message()[:-10], id="truncated-then-closed"),
        pytest.param(
            lambda: first_message(ik=False) + first_message(ik=False), id="two-first-messages"
        ),
    ],
)
async def test_bad_handshake_input_ends_only_that_socket(
    make_bytes: Callable[[], bytes], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="p2pswarm.transport")
    async with echo_server() as server, bystander(server):
        stream = await anyio.connect_tcp("127.0.0.1", server.port)
        await stream.send(make_bytes())
        await stream.send_eof()
        await assert_closed_by_server(stream)
    assert "handshake with 127.0.0.1" in caplog.text


async def test_wrong_responder_key_ik() -> None:
    async with echo_server() as server, bystander(server):
        with pytest.raises(HandshakeError):
            await connect_tcp(
                "127.0.0.1", server.port, remote_public_key=KeyPair.generate().public_key
            )


async def test_unknown_hello_version(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="p2pswarm.transport")
    async with echo_server() as server, bystander(server):
        # XX, so that the hello travels in message 3, after the handshake is underway.
        machine = SecretStream(initiator=True, key_pair=KeyPair.generate())
        machine._hello = bytes([7, 0])  # a hello from a future version
        stream = await anyio.connect_tcp("127.0.0.1", server.port)
        await stream.send(machine.data_to_send())
        machine.receive_data(await stream.receive())
        await stream.send(machine.data_to_send())
        await assert_closed_by_server(stream)
    assert "unknown hello version 7" in caplog.text


async def test_length_prefix_then_silence_hits_the_handshake_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="p2pswarm.transport")
    async with echo_server(handshake_timeout=0.5) as server, bystander(server):
        await send_raw_then_expect_close(server.port, b"\x20\x00\x00")
    assert "took over 0.5 s" in caplog.text


async def test_accept_handshake_raises_the_timeout() -> None:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as multi:
        (listener,) = multi.listeners
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        silent = await anyio.connect_tcp("127.0.0.1", port)
        async with silent:
            raw = await listener.accept()  # type: ignore[attr-defined]
            with pytest.raises(HandshakeTimeoutError):
                await accept_handshake(raw, key_pair=SERVER_KEYS, handshake_timeout=0.05)
            with pytest.raises(anyio.EndOfStream):
                await silent.receive()


# -- hostile peers after the handshake: the handler gets a typed error after the good data -----


async def test_wrong_stream_id_in_the_header_frame() -> None:
    keys = KeyPair.generate()
    async with echo_server() as server, bystander(server):
        stream, _ = await raw_handshake(server.port, keys, tamper_final=flip(-30))
        outcome, data = await server.wait_ended(keys.public_key)
        assert isinstance(outcome, RemoteProtocolError) and "stream id" in str(outcome)
        assert data == b""
        await assert_closed_by_server(stream)


async def test_frame_longer_than_allowed() -> None:
    keys = KeyPair.generate()
    async with echo_server(max_frame_size=1000) as server, bystander(server):
        stream, machine = await raw_handshake(server.port, keys)
        await stream.send(machine.send(b"fits") + machine.send(b"x" * 1000))
        outcome, data = await server.wait_ended(keys.public_key)
        assert isinstance(outcome, RemoteProtocolError) and "exceeds" in str(outcome)
        assert data == b"fits"
        await assert_closed_by_server(stream)


async def test_tampered_data_frame_after_good_data() -> None:
    keys = KeyPair.generate()
    async with echo_server() as server, bystander(server):
        stream, machine = await raw_handshake(server.port, keys, ik=False)
        good = machine.send(b"good one") + machine.send(b"good two")
        await stream.send(good + flip(-1)(machine.send(b"bad")))
        outcome, data = await server.wait_ended(keys.public_key)
        assert isinstance(outcome, RemoteProtocolError) and "authentication" in str(outcome)
        assert data == b"good onegood two"
        await assert_closed_by_server(stream)


async def test_peer_closes_mid_frame() -> None:
    keys = KeyPair.generate()
    async with echo_server() as server, bystander(server):
        stream, machine = await raw_handshake(server.port, keys)
        await stream.send(machine.send(b"whole") + machine.send(b"half")[:-3])
        await stream.send_eof()
        outcome, data = await server.wait_ended(keys.public_key)
        assert isinstance(outcome, RemoteProtocolError) and "mid-frame" in str(outcome)
        assert data == b"whole"
        await assert_closed_by_server(stream)


async def test_plain_secret_stream_peer_without_hello() -> None:
    keys = KeyPair.generate()
    async with echo_server() as server:
        stream, machine = await raw_handshake(server.port, keys, send_hello=False)
        await stream.send(machine.send(b"plain"))
        events = machine.receive_data(await stream.receive())
        assert [getattr(e, "data", None) for e in events] == [b"plain"]
        await stream.send_eof()
        assert await server.wait_ended(keys.public_key) == ("end", b"plain")
        assert server.topics[keys.public_key] == ()
        await stream.aclose()


# -- dialling ---------------------------------------------------------------------------------


async def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (just released)."""
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as multi:
        return int(multi.extra(anyio.abc.SocketAttribute.local_port))


async def test_connect_tcp_to_a_closed_port_is_a_dial_error() -> None:
    port = await closed_port()
    with pytest.raises(DialError) as raised:
        await connect_tcp("127.0.0.1", port)
    assert raised.value.reasons and f"127.0.0.1:{port}" in raised.value.reasons[0]


async def test_tcp_dialer_tries_addresses_in_order() -> None:
    dialer: Dialer = TCPDialer(connect_timeout=5.0)
    keys = KeyPair.generate()
    dead = await closed_port()
    async with echo_server() as server:
        record = PeerRecord(
            SERVER_KEYS.public_key,
            (
                PeerAddress("127.0.0.1", 1, AddressKind.RELAY),
                PeerAddress("127.0.0.1", dead),
                PeerAddress("127.0.0.1", server.port),
            ),
            topic=TOPIC,
        )
        async with await dialer.dial(record, key_pair=keys, topics=(TOPIC,)) as connection:
            assert connection.remote_public_key == SERVER_KEYS.public_key
            assert connection.remote_address == ("127.0.0.1", server.port)
            await connection.send_eof()
            with pytest.raises(anyio.EndOfStream):
                await connection.receive()
        await server.wait_ended(keys.public_key)
        assert server.topics[keys.public_key] == (TOPIC,)


async def test_tcp_dialer_explains_every_failure() -> None:
    dead = await closed_port()
    async with echo_server() as server:
        impostor = PeerRecord(
            KeyPair.generate().public_key,
            (PeerAddress("127.0.0.1", dead), PeerAddress("127.0.0.1", server.port)),
        )
        with pytest.raises(DialError) as raised:
            await TCPDialer().dial(impostor, key_pair=KeyPair.generate())
    reasons = raised.value.reasons
    assert len(reasons) == 2
    assert reasons[0].startswith(f"127.0.0.1:{dead}")
    assert reasons[1].startswith(f"127.0.0.1:{server.port}: HandshakeError")


async def test_tcp_dialer_without_direct_addresses() -> None:
    record = PeerRecord(
        KeyPair.generate().public_key, (PeerAddress("127.0.0.1", 1, AddressKind.RELAY),)
    )
    with pytest.raises(DialError, match="no direct address"):
        await TCPDialer().dial(record, key_pair=KeyPair.generate())
