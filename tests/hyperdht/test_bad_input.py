"""Hostile datagrams against a running DHTRPCNode: each is dropped (or answered with a typed
error), memory stays bounded, and honest requests are still answered."""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
import pytest

from p2pswarm.hyperdht import DHTRPCNode
from p2pswarm.hyperdht.limits import Limits
from p2pswarm.hyperdht.rpc import IncomingRequest
from p2pswarm.protocol.compact import IPv4Address
from p2pswarm.protocol.dht_rpc import (
    MAX_DATAGRAM_SIZE,
    ErrorCode,
    InternalCommand,
    Request,
    Response,
    node_id,
)

from .helpers import RawPeer, python_network, raw_peer

pytestmark = pytest.mark.anyio

PING = InternalCommand.PING


def ping(peer: RawPeer, node: DHTRPCNode, tid: int, **fields: object) -> Request:
    return Request(tid, peer.to(node), PING, True, **fields)  # type: ignore[arg-type]


async def test_malformed_datagrams_are_dropped_and_honest_ones_answered() -> None:
    async with python_network(0) as (boot, _), raw_peer() as raw:
        good = ping(raw, boot, 1).encode()
        bad = [
            good[:5],  # truncated
            good + b"\0",  # trailing byte
            b"\x03\xfd" + good[2:],  # a varint cut short
            b"\x03\xfd\x04\x00" + good[2:],  # a non-canonical varint
            b"\x03\x40" + good[2:],  # an unknown flag
            b"\x03\x06" + good[2:],  # token flag without a token
            good[:-1] + b"\xfe\xff\xff\xff\x7f",  # a command number out of range
            good[:-1] + b"\x10" + b"\0" * (MAX_DATAGRAM_SIZE + 100),  # oversized
        ]
        for data in bad:
            await raw.send(data, boot.address)
        for data in (b"", b"\x03", b"\x99" * 30):  # too short, or not dht-rpc at all
            await raw.send(data, boot.address)
        reply = await raw.request(boot.address, ping(raw, boot, 2))
        assert reply.error == 0
        assert boot.dropped["malformed"] == len(bad)
        assert boot.dropped["other"] == 1  # b"" and b"\x03" are below the 2-byte floor


async def test_a_forged_token_gets_invalid_token_and_a_fresh_one() -> None:
    seen: list[bytes | None] = []

    def handler(request: IncomingRequest) -> bool:
        seen.append(request.token)
        request.reply(b"ok")
        return True

    async with python_network(0, request_handler=handler) as (boot, _), raw_peer() as raw:
        forged = Request(1, raw.to(boot), 100, token=bytes(32), target=bytes(32))
        reply = await raw.request(boot.address, forged)
        assert reply.error == ErrorCode.INVALID_TOKEN and reply.token is not None
        assert seen == []  # the handler never saw it
        retry = Request(2, raw.to(boot), 100, token=reply.token, target=bytes(32))
        assert (await raw.request(boot.address, retry)).value == b"ok"
        assert seen == [reply.token]


async def test_an_id_that_is_not_the_senders_is_ignored() -> None:
    async with python_network(0) as (boot, _), raw_peer() as raw:
        stolen = node_id(*boot.address)  # not H(raw's address)
        await raw.request(boot.address, ping(raw, boot, 1, id=stolen))
        assert boot.pending_verifications == 0  # no ping back, no admission
        assert raw.address not in boot.to_array()


async def test_a_lying_to_does_not_move_our_address() -> None:
    """Four honest responders and one liar: the sampler keeps the truth; the `to` of
    requests and of unmatched responses counts for nothing."""
    async with DHTRPCNode(host="127.0.0.1") as node, AsyncExitStack() as stack:
        peers = [await stack.enter_async_context(raw_peer()) for _ in range(5)]
        truth = IPv4Address(*node.address)
        lie = IPv4Address("6.6.6.6", 1)

        async def answer(peer: RawPeer, to: IPv4Address) -> None:
            message, _ = await peer.receive()
            assert isinstance(message, Request)
            own_id = node_id(*peer.address)
            await peer.send(Response(message.tid, to, id=own_id).encode(), node.address)

        async with anyio.create_task_group() as tg:
            for n, peer in enumerate(peers):
                tg.start_soon(answer, peer, lie if n == 0 else truth)
                tg.start_soon(node.ping, peer.address)
        assert node.public_address == node.address
        liar = peers[0]
        for tid in range(20):
            await liar.send(Response(tid, lie).encode(), node.address)  # unmatched
            await liar.send(Request(tid, lie, PING, True).encode(), node.address)
        await liar.request(node.address, Request(99, truth, PING, True))
        assert node.public_address == node.address


async def test_a_flood_from_one_source_is_throttled_others_answered() -> None:
    limits = Limits(request_rate=0.001, request_burst=50)
    network = python_network(0, limits=limits)
    async with network as (boot, _), raw_peer() as flood, raw_peer() as honest:
        for tid in range(200):
            await flood.send(ping(flood, boot, tid).encode(), boot.address)
        reply = await honest.request(boot.address, ping(honest, boot, 7))
        assert reply.error == 0
        assert boot.dropped["throttled"] == 150


async def test_many_sources_keep_memory_bounded() -> None:
    limits = Limits(max_sources=8)
    async with python_network(0, limits=limits) as (boot, _):
        for tid in range(30):
            async with raw_peer() as peer:
                assert (await peer.request(boot.address, ping(peer, boot, tid))).error == 0
        assert boot.tracked_sources <= 8


async def test_replies_to_unproven_senders_come_out_of_a_byte_budget() -> None:
    limits = Limits(unproven_bytes_rate=0.001, unproven_bytes_burst=100)
    network = python_network(0, limits=limits)
    async with network as (boot, _), raw_peer() as spoofed, raw_peer() as other:
        for tid in range(30):
            await spoofed.send(ping(spoofed, boot, tid).encode(), boot.address)
        reply = await other.request(boot.address, ping(other, boot, 1))
        fit = 100 // len(reply.encode())  # a pong with our id is 42 bytes: 2 fit
        assert boot.dropped["unpaid"] == 30 - fit


async def test_unmatched_replies_cost_no_decoding() -> None:
    async with python_network(0) as (boot, _), raw_peer() as raw:
        for tid in range(50):
            await raw.send(b"\x13\xff" + tid.to_bytes(2, "little") + b"garbage", boot.address)
        await raw.request(boot.address, ping(raw, boot, 1))
        assert boot.dropped["unmatched"] == 50 and boot.dropped["malformed"] == 0
