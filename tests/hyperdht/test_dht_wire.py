"""Hostile datagrams at a storing Python node: forged tokens, replayed or wrongly signed
records, oversized values, floods. Each is refused or dropped and the node keeps answering.

A bare UDP socket plays the attacker. The node handles datagrams in order, so "no reply"
is checked without waiting on time: a PING sent after the bad request is answered, and no
answer to the bad request came before it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

from p2pswarm.hyperdht import HyperDHT, create_testnet
from p2pswarm.hyperdht.records import hash32, sign_announce, sign_mutable
from p2pswarm.keys import KeyPair, topic
from p2pswarm.protocol.compact import IPv4Address
from p2pswarm.protocol.dht_rpc import ErrorCode, InternalCommand, Request, Response, decode
from p2pswarm.protocol.hyperdht_messages import (
    Announce,
    Command,
    MutablePutRequest,
    Peer,
    encode_announce,
    encode_mutable_put_request,
)

pytestmark = pytest.mark.anyio

ALICE = KeyPair.from_seed(b"a" * 32)
ROOM = topic("hostile")
BOUND = 10.0  # a bound against hangs, never a timing assertion


class RawPeer:
    """Hand-made dht-rpc requests from a bare socket; answers matched by tid."""

    def __init__(self, sock: anyio.abc.ConnectedUDPSocket | anyio.abc.UDPSocket) -> None:
        self.sock = sock
        self._tids = itertools.count(1)

    async def send(self, to: tuple[str, int], command: int, **fields: object) -> int:
        tid = next(self._tids)
        request = Request(tid=tid, to=IPv4Address(*to), command=command, **fields)  # type: ignore[arg-type]
        await self.sock.sendto(request.encode(), *to)  # type: ignore[union-attr]
        return tid

    async def answers_until(self, tid: int) -> list[Response]:
        """Every response up to and including the one to ``tid``."""
        got: list[Response] = []
        with anyio.fail_after(BOUND):
            while True:
                data, _ = await self.sock.receive()  # type: ignore[misc]
                message = decode(data)
                assert isinstance(message, Response)
                got.append(message)
                if message.tid == tid:
                    return got

    async def request(self, to: tuple[str, int], command: int, **fields: object) -> Response:
        tid = await self.send(to, command, **fields)
        return (await self.answers_until(tid))[-1]

    async def silently_dropped(self, to: tuple[str, int], command: int, **fields: object) -> bool:
        """Send a request, then a PING: True if only the PING was answered."""
        bad = await self.send(to, command, **fields)
        ping = await self.send(to, InternalCommand.PING, internal=True)
        answers = await self.answers_until(ping)
        return [a.tid for a in answers] == [ping] and bad != ping


@asynccontextmanager
async def attacker() -> AsyncIterator[RawPeer]:
    async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock:
        yield RawPeer(sock)


async def token_of(peer: RawPeer, node: HyperDHT, target: bytes = ROOM) -> bytes:
    reply = await peer.request(node.address, Command.LOOKUP, target=target)
    assert reply.token is not None and reply.id == node.id
    return reply.token


def signed_announce(node_id: bytes, token: bytes, target: bytes = ROOM) -> bytes:
    peer = Peer(ALICE.public_key)
    return encode_announce(Announce(peer, None, sign_announce(ALICE, target, node_id, token, peer)))


async def test_forged_and_expired_tokens_are_refused() -> None:
    async with create_testnet(2) as testnet, attacker() as peer:
        node = testnet.nodes[1]
        assert node.id is not None
        forged = os.urandom(32)
        value = signed_announce(node.id, forged)
        reply = await peer.request(
            node.address, Command.ANNOUNCE, target=ROOM, token=forged, value=value
        )
        assert reply.error == ErrorCode.INVALID_TOKEN
        old = await token_of(peer, node)
        node.transactions.tokens.rotate()
        node.transactions.tokens.rotate()
        reply = await peer.request(
            node.address,
            Command.ANNOUNCE,
            target=ROOM,
            token=old,
            value=signed_announce(node.id, old),
        )
        assert reply.error == ErrorCode.INVALID_TOKEN
        assert len(node.store.records) == 0
        # a fresh token works
        token = await token_of(peer, node)
        reply = await peer.request(
            node.address,
            Command.ANNOUNCE,
            target=ROOM,
            token=token,
            value=signed_announce(node.id, token),
        )
        assert reply.error == 0 and node.store.records.get(ROOM, 20) != []


async def test_replayed_and_wrongly_signed_records_are_dropped() -> None:
    async with create_testnet(3) as testnet, attacker() as peer:
        a, b = testnet.nodes[1], testnet.nodes[2]
        assert a.id is not None and b.id is not None
        token_a = await token_of(peer, a)
        for_a = signed_announce(a.id, token_a)
        assert (
            await peer.request(a.address, Command.ANNOUNCE, target=ROOM, token=token_a, value=for_a)
        ).error == 0
        token_b = await token_of(peer, b)
        # A's copy replayed at B, with B's token: the signature covers A's id and token
        assert await peer.silently_dropped(
            b.address, Command.ANNOUNCE, target=ROOM, token=token_b, value=for_a
        )
        # signed for another topic
        other = signed_announce(b.id, token_b, topic("elsewhere"))
        assert await peer.silently_dropped(
            b.address, Command.ANNOUNCE, target=ROOM, token=token_b, value=other
        )
        # garbage values, no value, no target
        for value in (b"", b"\x01", b"\xff" * 100, for_a[:-1]):
            assert await peer.silently_dropped(
                b.address, Command.ANNOUNCE, target=ROOM, token=token_b, value=value
            )
        assert await peer.silently_dropped(b.address, Command.ANNOUNCE, target=ROOM, token=token_b)
        assert len(b.store.records) == 0

        # mutable values: a signature by someone else, and a signature replayed at a new seq
        target = hash32(ALICE.public_key)
        token_b = await token_of(peer, b, target)
        bad = MutablePutRequest(
            ALICE.public_key, 2, b"v", sign_mutable(KeyPair.generate(), 2, b"v")
        )
        replay = MutablePutRequest(ALICE.public_key, 3, b"v", sign_mutable(ALICE, 2, b"v"))
        for put in (bad, replay):
            assert await peer.silently_dropped(
                b.address,
                Command.MUTABLE_PUT,
                target=target,
                token=token_b,
                value=encode_mutable_put_request(put),
            )
        assert len(b.store.mutables) == 0


async def test_oversized_values_are_dropped() -> None:
    async with create_testnet(2) as testnet, attacker() as peer:
        node = testnet.nodes[1]
        target = hash32(ALICE.public_key)
        token = await token_of(peer, node, target)
        value = bytes(65_000)  # fits a datagram with its headers, above the value bound
        put = MutablePutRequest(ALICE.public_key, 1, value, sign_mutable(ALICE, 1, value))
        assert await peer.silently_dropped(
            node.address,
            Command.MUTABLE_PUT,
            target=target,
            token=token,
            value=encode_mutable_put_request(put),
        )
        assert len(node.store.mutables) == 0


async def test_a_flood_of_junk_leaves_the_node_answering() -> None:
    async with create_testnet(2) as testnet, attacker() as peer:
        node = testnet.nodes[1]
        junk = [b"\x03", b"\x03\x00", b"\x13" * 40, os.urandom(300), b"\x03\xff" + bytes(30)]
        for i in range(300):
            await peer.sock.sendto(junk[i % len(junk)], *node.address)  # type: ignore[union-attr]
        token = await token_of(peer, node)
        assert token
        # and a client on the testnet still works through it
        client = await testnet.create_node()
        await client.announce(ROOM, ALICE)
        assert [p.public_key async for r in client.lookup(ROOM) for p in r.peers]
