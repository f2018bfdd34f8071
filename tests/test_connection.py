"""Connection over real TCP on 127.0.0.1, on asyncio and trio."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from anyio.abc import ByteStream, SocketAttribute, SocketListener

from p2pswarm.connection import Connection, ConnectionAttribute
from p2pswarm.errors import IdleTimeoutError
from p2pswarm.keys import KeyPair
from p2pswarm.transports._handshake import accept_handshake, initiate_handshake
from p2pswarm.transports.tcp import (
    connect_tcp,
    create_socket_listener,
    create_tcp_listener,
    open_tcp_stream,
)

pytestmark = pytest.mark.anyio

CLIENT_KEYS = KeyPair.from_seed(b"\x0c" * 32)
SERVER_KEYS = KeyPair.from_seed(b"\x5e" * 32)
TOPIC = b"\x42" * 32


class CountingStream(ByteStream):
    """A real socket stream that counts writes and signals after ``target`` of them."""

    def __init__(self, inner: ByteStream, target: int = 0) -> None:
        self.inner = inner
        self.writes = 0
        self.target = target
        self.reached = anyio.Event()

    async def send(self, item: bytes) -> None:
        await self.inner.send(item)
        self.writes += 1
        if self.target and self.writes >= self.target:
            self.reached.set()

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self.inner.receive(max_bytes)

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.inner.extra_attributes


@asynccontextmanager
async def connected_pair(
    *,
    ik: bool = True,
    client: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
    wrap_client: Callable[[ByteStream], ByteStream] | None = None,
    wrap_server: Callable[[ByteStream], ByteStream] | None = None,
    anyio_streams: bool = False,
) -> AsyncIterator[tuple[Connection, Connection]]:
    """(initiator, responder) connected through a real TCP socket pair on 127.0.0.1: the
    library's own choice of socket stream (the lean one on asyncio), or anyio's."""
    if anyio_streams:
        listening = await anyio.create_tcp_listener(local_host="127.0.0.1")
    else:
        listening = await create_socket_listener(local_host="127.0.0.1")
    async with listening as multi:
        (listener,) = multi.listeners
        assert isinstance(listener, SocketListener)
        port = listener.extra(SocketAttribute.local_port)
        accepted: list[Connection] = []
        async with anyio.create_task_group() as group:

            async def accept() -> None:
                raw: ByteStream = await listener.accept()
                if wrap_server is not None:
                    raw = wrap_server(raw)
                accepted.append(await accept_handshake(raw, key_pair=SERVER_KEYS, **(server or {})))

            group.start_soon(accept)
            connect = anyio.connect_tcp if anyio_streams else open_tcp_stream
            raw_client: ByteStream = await connect("127.0.0.1", port)
            if wrap_client is not None:
                raw_client = wrap_client(raw_client)
            initiator = await initiate_handshake(
                raw_client,
                key_pair=CLIENT_KEYS,
                remote_public_key=SERVER_KEYS.public_key if ik else None,
                topics=(TOPIC,),
                **(client or {}),
            )
    (responder,) = accepted
    try:
        yield initiator, responder
    finally:
        await initiator.aclose()
        await responder.aclose()


async def receive_exactly(connection: Connection, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        data += await connection.receive()
    return bytes(data)


@pytest.mark.parametrize("ik", [True, False], ids=["IK", "XX"])
async def test_identities_and_typed_attributes(ik: bool) -> None:
    async with connected_pair(ik=ik) as (initiator, responder):
        assert initiator.remote_public_key == SERVER_KEYS.public_key == responder.public_key
        assert responder.remote_public_key == CLIENT_KEYS.public_key == initiator.public_key
        assert initiator.handshake_hash == responder.handshake_hash
        assert len(initiator.handshake_hash) == 64
        assert initiator.is_initiator and not responder.is_initiator
        assert responder.remote_topics == (TOPIC,) and initiator.remote_topics == ()
        assert not initiator.relayed and not responder.relayed
        client_port = initiator.extra(SocketAttribute.local_port)
        assert responder.remote_address == ("127.0.0.1", client_port)
        assert initiator.remote_address[0] == "127.0.0.1"
        for connection in (initiator, responder):
            attr = ConnectionAttribute
            assert connection.extra(attr.remote_public_key) == connection.remote_public_key
            assert connection.extra(attr.public_key) == connection.public_key
            assert connection.extra(attr.handshake_hash) == connection.handshake_hash
            assert connection.extra(attr.is_initiator) is connection.is_initiator
            assert connection.extra(attr.remote_address) == connection.remote_address
            assert connection.extra(attr.remote_topics) == connection.remote_topics
            assert connection.extra(attr.relayed) is False
            assert connection.extra(SocketAttribute.remote_port) > 0
        assert "initiator" in repr(initiator) and "open" in repr(responder)


async def test_data_both_ways_with_byte_counts() -> None:
    async with connected_pair() as (initiator, responder):
        await initiator.send(b"ping")
        assert await responder.receive() == b"ping"
        await responder.send(b"pong!")
        assert await initiator.receive() == b"pong!"
        await initiator.send_keepalive()
        await initiator.send(b"after keep-alive")
        assert await responder.receive() == b"after keep-alive"
        assert (initiator.bytes_written, initiator.bytes_read) == (4 + 16, 5)
        assert (responder.bytes_written, responder.bytes_read) == (5, 4 + 16)


async def test_large_send_arrives_intact_and_receive_honours_max_bytes() -> None:
    payload = bytes(range(256)) * (5 * 4096)  # 5 MiB
    async with connected_pair() as (initiator, responder):
        async with anyio.create_task_group() as group:
            group.start_soon(initiator.send, payload)
            first = await responder.receive(1000)
            assert len(first) <= 1000
            rest = await receive_exactly(responder, len(payload) - len(first))
        assert first + rest == payload


async def test_small_reads_walk_through_a_large_chunk() -> None:
    payload = bytes(range(256)) * 256  # one 64 KiB frame
    async with connected_pair() as (initiator, responder):
        await initiator.send(payload + b"tail")
        pieces = [await responder.receive(1000) for _ in range(66)]
        assert all(len(piece) <= 1000 for piece in pieces)
        rest = await receive_exactly(responder, len(payload) + 4 - sum(map(len, pieces)))
        assert b"".join(pieces) + rest == payload + b"tail"


async def test_send_eof_is_a_half_close() -> None:
    async with connected_pair() as (initiator, responder):
        await initiator.send(b"last words")
        await initiator.send_eof()
        await initiator.send_eof()  # idempotent
        assert await responder.receive() == b"last words"
        with pytest.raises(anyio.EndOfStream):
            await responder.receive()
        with pytest.raises(anyio.EndOfStream):
            await responder.receive()
        with pytest.raises(anyio.ClosedResourceError):
            await initiator.send(b"too late")
        await responder.send(b"reply after eof")
        assert await initiator.receive() == b"reply after eof"


async def test_aclose_closes_both_ends_and_wakes_waiters() -> None:
    async with connected_pair() as (initiator, responder):
        assert not initiator.closed
        async with anyio.create_task_group() as group:
            group.start_soon(initiator.wait_closed)
            await initiator.aclose()
        assert initiator.closed
        await initiator.aclose()
        with pytest.raises(anyio.ClosedResourceError):
            await initiator.receive()
        with pytest.raises(anyio.ClosedResourceError):
            await initiator.send(b"x")
        with pytest.raises(anyio.EndOfStream):
            await responder.receive()


async def test_aclose_from_another_task_interrupts_receive() -> None:
    async with connected_pair() as (initiator, _), anyio.create_task_group() as group:

        async def close_soon() -> None:
            await anyio.wait_all_tasks_blocked()
            await initiator.aclose()

        group.start_soon(close_soon)
        with pytest.raises(anyio.ClosedResourceError):
            await initiator.receive()


async def test_concurrent_receive_is_busy() -> None:
    async with connected_pair() as (initiator, responder), anyio.create_task_group() as group:
        group.start_soon(responder.receive)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(anyio.BusyResourceError):
            await responder.receive()
        await initiator.send(b"release the first receiver")


async def test_concurrent_sends_never_interleave() -> None:
    block = 100_000  # more than one frame each
    count = 20
    async with connected_pair() as (initiator, responder), anyio.create_task_group() as group:
        for value in (1, 2):

            async def sender(value: int = value) -> None:
                for _ in range(count):
                    await initiator.send(bytes([value]) * block)

            group.start_soon(sender)
        data = await receive_exactly(responder, 2 * count * block)
    blocks = [data[i : i + block] for i in range(0, len(data), block)]
    assert sorted(b[0] for b in blocks) == [1] * count + [2] * count
    assert all(b == bytes([b[0]]) * block for b in blocks)


async def test_a_sender_cancelled_while_waiting_its_turn_does_not_block_others() -> None:
    big = bytes(16 * 1024 * 1024)  # more than the socket buffers hold: the first send blocks
    async with connected_pair() as (initiator, responder), anyio.create_task_group() as group:
        group.start_soon(initiator.send, big)
        await anyio.wait_all_tasks_blocked()
        with anyio.CancelScope() as scope:
            scope.cancel()
            await initiator.send(b"never sent")  # waits for its turn, then is cancelled
        async with anyio.create_task_group() as later:
            later.start_soon(initiator.send, b"after the big one")
            data = await receive_exactly(responder, len(big) + len(b"after the big one"))
        assert data[len(big) :] == b"after the big one"


async def test_run_keepalive_keeps_an_idle_peer_alive() -> None:
    counting: list[CountingStream] = []

    def wrap(stream: ByteStream) -> ByteStream:
        counting.append(CountingStream(stream, target=3 + 8))  # handshake writes + 8
        return counting[0]

    async with connected_pair(
        ik=True,
        client={"keepalive": 0.01},
        server={"idle_timeout": 1.0},
        wrap_client=wrap,
    ) as (initiator, responder):
        async with anyio.create_task_group() as group:
            group.start_soon(initiator.run_keepalive)
            with anyio.fail_after(10):
                await counting[0].reached.wait()
            await initiator.send(b"still here")
            # The responder saw keep-alives only, then data: no idle timeout.
            assert await responder.receive() == b"still here"
            assert responder.bytes_read == len(b"still here")
            await initiator.aclose()  # run_keepalive returns on close
        assert initiator.closed


@pytest.mark.parametrize("anyio_streams", [False, True], ids=["own-stream", "anyio-stream"])
async def test_receive_sends_keepalives_while_waiting(anyio_streams: bool) -> None:
    counting: list[CountingStream] = []

    def wrap(stream: ByteStream) -> ByteStream:
        counting.append(CountingStream(stream, target=2 + 5))
        return counting[0]

    async with connected_pair(
        ik=True,
        server={"keepalive": 0.01},
        wrap_server=wrap,
        client={"keepalive": None},
        anyio_streams=anyio_streams,
    ) as (initiator, responder):
        async with anyio.create_task_group() as group:

            async def stop_when_enough() -> None:
                with anyio.fail_after(10):
                    await counting[0].reached.wait()
                await initiator.send(b"done")

            group.start_soon(stop_when_enough)
            assert await responder.receive() == b"done"
        assert initiator.bytes_written == 4


class CountingReceives(CountingStream):
    """Counts the chunks read instead, signalling after ``target`` of them."""

    async def send(self, item: bytes) -> None:
        await self.inner.send(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        chunk = await self.inner.receive(max_bytes)
        self.writes += 1
        if self.target and self.writes >= self.target:
            self.reached.set()
        return chunk


@pytest.mark.parametrize("anyio_streams", [False, True], ids=["own-stream", "anyio-stream"])
async def test_an_unwrapped_waiting_receiver_sends_keepalives(anyio_streams: bool) -> None:
    """The responder reads straight from its socket stream (on asyncio the lean stream's
    timed read, no cancel scope) and must still send keep-alives while it waits."""
    counting: list[CountingStream] = []

    def wrap(stream: ByteStream) -> ByteStream:
        counting.append(CountingReceives(stream, target=1 + 5))  # header frame + 5
        return counting[0]

    async with connected_pair(
        ik=True,
        server={"keepalive": 0.01, "idle_timeout": None},
        client={"keepalive": None, "idle_timeout": None},
        wrap_client=wrap,
        anyio_streams=anyio_streams,
    ) as (initiator, responder):
        async with anyio.create_task_group() as group:
            received: list[bytes] = []

            async def read_reply() -> None:
                received.append(await initiator.receive())

            async def answer() -> None:
                assert await responder.receive() == b"done"  # keep-alives go out meanwhile
                await responder.send(b"bye")

            group.start_soon(read_reply)
            group.start_soon(answer)
            with anyio.fail_after(10):
                await counting[0].reached.wait()  # keep-alives only: nothing else was sent
            await initiator.send(b"done")
        assert received == [b"bye"]
        assert initiator.bytes_read == 3


@pytest.mark.parametrize("anyio_streams", [False, True], ids=["own-stream", "anyio-stream"])
async def test_idle_timeout_closes_a_silent_peer(anyio_streams: bool) -> None:
    async with connected_pair(
        client={"keepalive": None},
        server={"idle_timeout": 0.05, "keepalive": None},
        anyio_streams=anyio_streams,
    ) as (initiator, responder):
        await initiator.send(b"then silence")
        assert await responder.receive() == b"then silence"
        with pytest.raises(IdleTimeoutError):
            await responder.receive()
        assert responder.closed
        # Raised once; afterwards the connection is simply broken, for receive and send.
        with pytest.raises(anyio.BrokenResourceError):
            await responder.receive()
        with pytest.raises(anyio.BrokenResourceError):
            await responder.send(b"x")
        with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            await initiator.receive()


@pytest.mark.parametrize("anyio_streams", [False, True], ids=["own-stream", "anyio-stream"])
async def test_time_spent_not_reading_is_not_idle_time(anyio_streams: bool) -> None:
    # A sender that only writes for longer than the idle timeout, then reads: what the peer
    # sent meanwhile is returned, the peer was not silent. (The connection's clock skips a
    # minute past its 20 s idle timeout.)
    async with connected_pair(
        client={"keepalive": None}, server={"keepalive": None}, anyio_streams=anyio_streams
    ) as (initiator, responder):
        clock, skipped = initiator._clock, [0.0]
        initiator._clock = lambda: clock() + skipped[0]
        await responder.send(b"still here")
        skipped[0] = 60.0  # the initiator was busy elsewhere for a minute
        assert await initiator.receive() == b"still here"
        assert not initiator.closed


async def test_run_keepalive_enforces_the_idle_timeout_for_a_waiting_receiver() -> None:
    async with connected_pair(
        client={"keepalive": None}, server={"idle_timeout": 0.05, "keepalive": 0.01}
    ) as (initiator, responder):
        await initiator.send(b"then silence")
        async with anyio.create_task_group() as group:
            group.start_soon(responder.run_keepalive)
            assert await responder.receive() == b"then silence"
            with pytest.raises(IdleTimeoutError):
                await responder.receive()  # woken by run_keepalive, which then returns
        assert responder.closed
        with pytest.raises(anyio.BrokenResourceError):
            await responder.receive()


async def test_no_timers_when_both_disabled() -> None:
    async with (
        connected_pair(
            client={"keepalive": None, "idle_timeout": None},
            server={"keepalive": None, "idle_timeout": None},
        ) as (initiator, responder),
        anyio.create_task_group() as group,
    ):
        group.start_soon(initiator.run_keepalive)  # returns when closed
        await initiator.send(b"x")
        assert await responder.receive() == b"x"
        await initiator.aclose()


async def test_bad_arguments() -> None:
    async with connected_pair() as (initiator, _):
        with pytest.raises(ValueError):
            await initiator.receive(0)
    for bad in ({"keepalive": 0}, {"idle_timeout": -1.0}, {"handshake_timeout": 0}):
        with pytest.raises(ValueError):
            await connect_tcp("127.0.0.1", 9, **bad)
        with pytest.raises(ValueError):
            await create_tcp_listener(local_host="127.0.0.1", **bad)
    with pytest.raises(ValueError):
        await connect_tcp("127.0.0.1", 9, remote_public_key=b"short")


async def test_listener_attributes_and_reuse_flags() -> None:
    import socket

    async with await create_tcp_listener(local_host="127.0.0.1") as listener:
        host, port = listener.local_address
        assert host == "127.0.0.1" and port == listener.extra(SocketAttribute.local_port)
        raw = listener.extra(SocketAttribute.raw_socket)
        assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        assert len(listener.public_key) == 32
