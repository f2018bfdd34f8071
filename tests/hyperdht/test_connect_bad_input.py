"""Hostile input at connect and serve: garbage and forged handshakes, handshakes for unknown
servers, replays, a refusing firewall, a flood of valid handshakes. Each ends in a typed
error or silence, state stays bounded, and honest connections are still made."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import anyio
import pytest
from hypothesis import given, settings, strategies as st

from p2pswarm.connection import Connection
from p2pswarm.errors import (
    BadHandshakeReplyError,
    CompactDecodeError,
    DHTError,
    DHTTimeoutError,
    HandshakeError,
    PeerConnectionError,
    PeerNotFoundError,
)
from p2pswarm.hyperdht import HyperDHT, create_testnet, server as server_module
from p2pswarm.hyperdht.records import NS_PEER_HANDSHAKE, hash32
from p2pswarm.hyperdht.router import peer_handshake
from p2pswarm.hyperdht.rpc import IncomingRequest
from p2pswarm.keys import KeyPair
from p2pswarm.protocol.handshake import NoiseHandshake, Pattern
from p2pswarm.protocol.hyperdht_connect import (
    Handshake,
    HandshakeMode,
    NoisePayload,
    UDXInfo,
    decode_handshake,
    decode_noise_payload,
    encode_handshake,
    encode_noise_payload,
)
from p2pswarm.protocol.hyperdht_messages import Command

SERVER = KeyPair.from_seed(b"S" * 32)


async def echo(connection: Connection) -> None:
    with contextlib.suppress(
        anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError
    ):
        while True:
            await connection.send(await connection.receive())


async def check_echo(client: HyperDHT) -> None:
    async with await client.connect(SERVER.public_key) as connection:
        await connection.send(b"still here")
        assert await connection.receive() == b"still here"


def first_message(payload: bytes, key_pair: KeyPair | None = None) -> bytes:
    noise = NoiseHandshake(
        Pattern.IK,
        initiator=True,
        key_pair=key_pair or KeyPair.generate(),
        remote_public_key=SERVER.public_key,
        prologue=NS_PEER_HANDSHAKE,
    )
    return noise.write_message(payload)


def valid_payload() -> bytes:
    return encode_noise_payload(NoisePayload(udx=UDXInfo(int.from_bytes(os.urandom(4)))))


async def send_handshake(
    client: HyperDHT, to: tuple[str, int], noise: bytes, **kw: object
) -> bytes | None:
    value = encode_handshake(Handshake(HandshakeMode.FROM_CLIENT, noise))
    reply = await client.request(
        to,
        Command.PEER_HANDSHAKE,
        target=hash32(SERVER.public_key),
        value=value,
        **kw,  # type: ignore[arg-type]
    )
    return reply.value


@pytest.mark.anyio
async def test_garbage_forged_and_replayed_handshakes_at_a_server() -> None:
    async with create_testnet(3) as testnet:
        server_node = await testnet.create_node()
        server = server_node.create_server(echo)
        await server.listen(SERVER)
        client = await testnet.create_node()
        to = server_node.address if not server_node.firewalled else server_node.client_address
        assert to is not None
        # an undecodable handshake value: dropped before any server sees it
        with pytest.raises(DHTTimeoutError):
            await client.request(
                to,
                Command.PEER_HANDSHAKE,
                target=hash32(SERVER.public_key),
                value=b"\xff",
                retries=0,
            )
        assert server_node.bad_handshakes == 1
        # Noise that does not authenticate: one failed DH, no state, silence
        with pytest.raises(DHTTimeoutError):
            await send_handshake(client, to, os.urandom(120), retries=0, resend_after=0.2)
        assert server.stats["bad_noise"] == 1
        # a valid Noise message whose payload is garbage
        with pytest.raises(DHTTimeoutError):
            await send_handshake(
                client, to, first_message(b"\xff\xff"), retries=0, resend_after=0.2
            )
        assert server.stats["bad_payload"] == 1
        assert server.pending_handshakes == 0
        # a replayed first message gets the very same answer and no second stream
        message = first_message(valid_payload())
        first = await send_handshake(client, to, message)
        again = await send_handshake(client, to, message)
        assert first == again and first is not None
        assert server.stats["handshakes"] == 1 and server.stats["retransmits"] == 1
        assert server.pending_handshakes == 1
        await check_echo(client)


@pytest.mark.anyio
async def test_a_flood_of_valid_handshakes_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "MAX_HANDSHAKES", 8)
    async with create_testnet(3) as testnet:
        server_node = await testnet.create_node()
        server = server_node.create_server(echo)
        await server.listen(SERVER)
        client = await testnet.create_node()
        to = server_node.address if not server_node.firewalled else server_node.client_address
        assert to is not None
        messages = [first_message(valid_payload()) for _ in range(24)]

        async def one(message: bytes) -> None:
            with contextlib.suppress(DHTError):
                await send_handshake(client, to, message, retries=0, resend_after=0.2)

        async with anyio.create_task_group() as tg:
            for message in messages:
                tg.start_soon(one, message)
        assert server.pending_handshakes <= 8
        assert server.stats["evicted"] >= server.stats["handshakes"] - 8
        # every evicted state took its unconnected stream with it
        socket = server_node.stream_socket()
        assert len(socket.streams) <= 8 + 1
        await check_echo(client)


def refuse_all(seen: list[tuple[bytes, NoisePayload]]) -> Callable[..., bool]:
    def firewall(remote_public_key: bytes, payload: NoisePayload, address: tuple[str, int]) -> bool:
        seen.append((remote_public_key, payload))
        return True

    return firewall


@pytest.mark.anyio
async def test_a_refusing_firewall_and_unknown_servers() -> None:
    seen: list[tuple[bytes, NoisePayload]] = []
    async with create_testnet(3) as testnet:
        server_node = await testnet.create_node()
        server = server_node.create_server(echo, firewall=refuse_all(seen))
        await server.listen(SERVER)
        client = await testnet.create_node()
        to = server_node.address if not server_node.firewalled else server_node.client_address
        assert to is not None
        key = KeyPair.generate()
        # refused: silence (as JS), no stream, no connection
        with pytest.raises(DHTTimeoutError):
            await send_handshake(
                client, to, first_message(valid_payload(), key), retries=0, resend_after=0.2
            )
        assert seen and seen[0][0] == key.public_key and seen[0][1].udx is not None
        assert server.stats["refused"] == 1 and server.stats["connections"] == 0
        assert not server_node.stream_socket().streams
        # nobody routes for this key
        with pytest.raises(PeerNotFoundError):
            await client.connect(KeyPair.generate().public_key)
        # a node without a route answers with closer nodes only
        with pytest.raises(BadHandshakeReplyError):
            await peer_handshake(
                client, hash32(b"x" * 32), first_message(valid_payload()), testnet.nodes[1].address
            )


@pytest.mark.slow
@pytest.mark.anyio
async def test_connect_to_a_refusing_server_fails_typed() -> None:
    # one storing node, one route: the refused handshake's four silent sends (as JS)
    seen: list[tuple[bytes, NoisePayload]] = []
    async with create_testnet(1) as testnet:
        server_node = await testnet.create_node()
        server = server_node.create_server(echo, firewall=refuse_all(seen))
        await server.listen(SERVER)
        client = await testnet.create_node()
        with pytest.raises(PeerConnectionError):
            await client.connect(SERVER.public_key)
        assert server.stats["refused"] >= 1 and server.stats["connections"] == 0


class ForgingNode(HyperDHT):
    """A routing node that answers every handshake with a forged REPLY."""

    forged = 0
    mode = HandshakeMode.REPLY

    def _on_peer_handshake(self, request: IncomingRequest) -> None:
        self.forged += 1
        value = encode_handshake(Handshake(self.mode, os.urandom(80)))
        request.send_reply(0, value, token=False, closer_nodes=False)


@pytest.mark.anyio
async def test_forged_replies_from_a_routing_node_do_not_stop_the_connect() -> None:
    async with create_testnet(3) as testnet:
        boot = testnet.bootstrap
        # nodes nest (each holds task groups): entered and left in LIFO order
        async with (
            ForgingNode(boot, host="127.0.0.1", ephemeral=False, firewalled=False) as evil,
            HyperDHT(boot, host="127.0.0.1", ephemeral=True) as server_node,
            HyperDHT(boot, host="127.0.0.1", ephemeral=True) as client,
        ):
            for node in (evil, server_node, client):
                await node.fully_bootstrapped()
            server = server_node.create_server(echo)
            await server.listen(SERVER)
            target = hash32(SERVER.public_key)
            # a well-formed REPLY whose Noise message is forged: the handshake refuses it
            noise = NoiseHandshake(
                Pattern.IK,
                initiator=True,
                key_pair=KeyPair.generate(),
                remote_public_key=SERVER.public_key,
                prologue=NS_PEER_HANDSHAKE,
            )
            reply = await peer_handshake(client, target, noise.write_message(b""), evil.address)
            with pytest.raises(HandshakeError):
                noise.read_message(reply.noise)
            # a reply in the wrong mode is refused by the router
            evil.mode = HandshakeMode.FROM_SERVER
            with pytest.raises(BadHandshakeReplyError):
                await peer_handshake(client, target, first_message(valid_payload()), evil.address)
            evil.mode = HandshakeMode.REPLY
            assert evil.forged == 2
            # connect goes on past a forging route (if the walk meets it) to an honest one
            for _ in range(2):
                await check_echo(client)
            await server.aclose()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decoders_raise_only_compact_decode_errors(data: bytes) -> None:
    for decode in (decode_handshake, decode_noise_payload):
        with contextlib.suppress(CompactDecodeError):
            decode(data)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(list(HandshakeMode)),
    st.binary(max_size=200),
    st.none() | st.tuples(st.just("10.0.0.1"), st.integers(1, 65535)),
)
def test_handshake_roundtrip(
    mode: HandshakeMode, noise: bytes, peer: tuple[str, int] | None
) -> None:
    from p2pswarm.protocol.compact import IPv4Address

    address = IPv4Address(*peer) if peer else None
    hs = Handshake(int(mode), noise, address)
    assert decode_handshake(encode_handshake(hs)) == hs
