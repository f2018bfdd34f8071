"""Reflection bounds: replies to unproven senders stay within 3x their request's size."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings, strategies as st

from p2pswarm.dht import DHTNode, create_testnet
from p2pswarm.dht.amplification import (
    AMPLIFICATION_FACTOR,
    RECORD_QUERY_SIZE,
    ReplyTokens,
    bound_reply,
    pad_target,
)
from p2pswarm.dht.messages import Command, NodeContact, Request, Response, Status, decode
from p2pswarm.dht.testnet import Testnet as LocalDHT
from p2pswarm.keys import KeyPair, topic

from .helpers import RawPeer, new_rid, open_raw_peer
from .test_messages import responses

BUSY = topic("amplification: a busy topic")
PUBLISHERS = 20


def test_pad_targets_pay_for_the_largest_reply_of_each_query() -> None:
    v6 = "2001:db8::1"
    contacts = tuple(NodeContact(bytes(20), v6, 1) for _ in range(20))
    largest_find_node = Response(
        Command.FIND_NODE, 1, (v6, 1), bytes(20), Status.OK, bytes(32), contacts
    )
    largest_ping = Response(Command.PING, 1, (v6, 1), bytes(20))
    assert len(largest_find_node.encode()) <= AMPLIFICATION_FACTOR * pad_target(Command.FIND_NODE)
    assert len(largest_ping.encode()) <= AMPLIFICATION_FACTOR * pad_target(Command.PING)
    assert pad_target(Command.LOOKUP) == RECORD_QUERY_SIZE
    assert pad_target(Command.ANNOUNCE) == 0


def test_records_are_kept_first_and_truncation_is_flagged() -> None:
    contacts = tuple(NodeContact(bytes([i]) * 20, "10.0.0.1", 1000 + i) for i in range(20))
    records = tuple(("10.0.0.2", bytes([i]) * 150) for i in range(20))
    full = Response(
        Command.LOOKUP, 1, ("10.0.0.3", 9), bytes(20), Status.OK, bytes(32), contacts, records
    )
    bare_size = len(
        Response(Command.LOOKUP, 1, ("10.0.0.3", 9), bytes(20), Status.OK, bytes(32)).encode()
    )
    assert bound_reply(full, bare_size - 1) is None
    bare = bound_reply(full, bare_size)
    assert bare is not None and bare.records == () and bare.nodes == () and bare.truncated
    some = bound_reply(full, bare_size + 3 * 157 + 27)
    assert some is not None and some.records == records[:3] and some.nodes == contacts[:1]
    assert some.truncated and len(some.encode()) <= bare_size + 3 * 157 + 27
    untouched = bound_reply(full, 10_000)
    assert untouched == full and not untouched.truncated


@given(responses(), st.integers(0, 9000))
@settings(deadline=None)
def test_a_bounded_reply_always_fits_its_budget(response: Response, budget: int) -> None:
    bounded = bound_reply(response, budget)
    if bounded is None:
        assert len(response.encode()) > budget
        return
    assert len(bounded.encode()) <= budget
    assert set(bounded.records) <= set(response.records)
    assert bounded.truncated == (response.truncated or bounded.records != response.records)


def test_reply_tokens_age_out_and_stay_bounded() -> None:
    tokens = ReplyTokens(max_age=30, max_entries=3)
    tokens.put(("10.0.0.1", 1), b"a" * 32, 100.0)
    assert tokens.get(("10.0.0.1", 1), 129.0) == b"a" * 32
    assert tokens.get(("10.0.0.1", 1), 130.0) == b""  # too old: pad instead
    assert tokens.get(("10.0.0.1", 2), 100.0) == b""
    for port in range(10):
        tokens.put(("10.0.0.1", port), b"b" * 32, 200.0)
    assert len(tokens) == 3 and tokens.get(("10.0.0.1", 9), 200.0) == b"b" * 32
    tokens.put(("10.0.0.1", 5), b"c" * 32, 300.0)
    assert tokens.get(("10.0.0.1", 5), 250.0) == b""  # a clock stepping back: distrust


pytestmark = pytest.mark.anyio


@pytest.fixture
async def busy() -> AsyncIterator[LocalDHT]:
    """A one-node testnet storing 20 records under BUSY (a full reply is ~3.7 KB)."""
    async with create_testnet(1) as testnet, DHTNode(bootstrap=testnet.bootstrap) as announcer:
        for _ in range(PUBLISHERS):
            await announcer.announce(BUSY, KeyPair.generate(), 4000)
        assert testnet.nodes[0].stored_records == PUBLISHERS
        yield testnet


async def exchange(peer: RawPeer, to: tuple[str, int], request: Request) -> tuple[int, Response]:
    """Send ``request`` as it is (no padding added) and return the reply's size and itself."""
    await peer.send(request.encode(), to)
    while True:
        data, _ = await peer.sock.receive()
        reply = decode(data)
        if isinstance(reply, Response) and reply.rid == request.rid:
            return len(data), reply


async def test_an_unpadded_lookup_draws_at_most_3x_and_a_token(busy: LocalDHT) -> None:
    server = busy.nodes[0].address
    peer = await open_raw_peer()
    async with peer.sock:
        small = Request(Command.LOOKUP, new_rid(), key=BUSY)
        size, reply = await exchange(peer, server, small)
        assert size <= AMPLIFICATION_FACTOR * len(small.encode())
        assert reply.truncated and reply.records == () and reply.token is not None

        # A forged token proves nothing: still bounded.
        forged = Request(Command.LOOKUP, new_rid(), key=BUSY, token=bytes(32))
        size, reply = await exchange(peer, server, forged)
        assert size <= AMPLIFICATION_FACTOR * len(forged.encode()) and reply.truncated

        # The token from the reply proves the address: the whole record set flows.
        proven = Request(Command.LOOKUP, new_rid(), key=BUSY, token=reply.token or b"")
        size, reply = await exchange(peer, server, proven)
        assert len(reply.records) == PUBLISHERS and not reply.truncated
        assert size > AMPLIFICATION_FACTOR * len(proven.encode())

        # Padding pays for it too, without a round trip first.
        padded = Request(Command.LOOKUP, new_rid(), key=BUSY, padding=RECORD_QUERY_SIZE - 41)
        size, reply = await exchange(peer, server, padded)
        assert len(padded.encode()) == RECORD_QUERY_SIZE
        assert len(reply.records) == PUBLISHERS and not reply.truncated
        assert size <= AMPLIFICATION_FACTOR * RECORD_QUERY_SIZE


async def test_a_request_too_small_to_pay_gets_no_reply(busy: LocalDHT) -> None:
    node = busy.nodes[0]
    peer = await open_raw_peer()
    async with peer.sock:
        await peer.send(Request(Command.PING, new_rid()).encode(), node.address)  # 7 bytes
        # Read after the 7-byte ping (same socket, sent later): by then it was refused.
        reply = await peer.request(node.address, Request(Command.PING, new_rid()))
        assert reply.node_id == node.node_id
        assert node.unpaid_requests == 1


async def test_lookups_get_every_record_and_then_reuse_tokens(busy: LocalDHT) -> None:
    server = busy.nodes[0].address
    async with DHTNode(bootstrap=busy.bootstrap) as client:
        for _ in range(2):
            async with client.lookup(BUSY) as found:
                assert len([record async for record in found]) == PUBLISHERS
        assert client._reply_tokens.get(server, _now()) != b""


async def test_a_stale_token_costs_one_more_ask_not_the_records(busy: LocalDHT) -> None:
    server = busy.nodes[0].address
    async with DHTNode(bootstrap=busy.bootstrap) as client:
        client._reply_tokens.put(server, bytes(32), _now())  # as after the server rotated
        async with client.lookup(BUSY) as found:
            assert len([record async for record in found]) == PUBLISHERS
        assert client._reply_tokens.get(server, _now()) not in (b"", bytes(32))


def _now() -> float:
    return time.monotonic()
