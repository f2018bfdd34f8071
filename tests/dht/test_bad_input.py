"""Hostile and broken input: each case is dropped or refused, and the node keeps serving."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import AsyncIterator, Callable

import anyio
import anyio.abc
import pytest
from kademlia.node import Node

from p2pswarm.dht import DHTNode, create_testnet, messages
from p2pswarm.dht.messages import (
    MAX_DATAGRAM_SIZE,
    Command,
    NodeContact,
    Request,
    Response,
    Status,
)
from p2pswarm.dht.records import ANNOUNCE_DOMAIN, create_record
from p2pswarm.errors import DHTTimeoutError
from p2pswarm.keys import KeyPair, topic
from p2pswarm.peer_record import AddressKind, PeerAddress
from p2pswarm.testing import FakeClock

from .helpers import QUICK, RawPeer, new_rid, open_raw_peer

pytestmark = pytest.mark.anyio

TOPIC = topic("bad input")


@pytest.fixture
async def target() -> AsyncIterator[DHTNode]:
    async with DHTNode(ephemeral=False) as node:
        yield node


@pytest.fixture
async def peer() -> AsyncIterator[RawPeer]:
    raw = await open_raw_peer()
    async with raw.sock:
        yield raw


async def still_serves(peer: RawPeer, node: DHTNode) -> None:
    reply = await peer.request(node.address, Request(Command.PING, new_rid()))
    assert reply.node_id == node.node_id
    assert reply.to == peer.address


async def announce(
    peer: RawPeer, node: DHTNode, payload: bytes, token: bytes | None = None
) -> Status:
    if token is None:
        token = await peer.token_from(node.address, TOPIC)
    request = Request(Command.ANNOUNCE, new_rid(), token=token, payload=payload)
    return (await peer.request(node.address, request)).status


def signed(key_pair: KeyPair, t: bytes = TOPIC, **options: object) -> bytes:
    settings: dict[str, object] = {"seq": 1, "expiry": 4_000_000_000.0}
    settings.update(options)
    return create_record(key_pair, t, 1234, **settings).encode()  # type: ignore[arg-type]


async def test_random_datagrams(target: DHTNode, peer: RawPeer) -> None:
    for size in (1, 7, 20, 100, 1400, 8000):
        await peer.send(os.urandom(size), target.address)
    await still_serves(peer, target)
    assert target.dropped_datagrams >= 1


async def test_truncated_and_oversized_datagrams(target: DHTNode, peer: RawPeer) -> None:
    valid = Request(Command.FIND_NODE, new_rid(), os.urandom(20), key=os.urandom(20)).encode()
    for cut in range(1, len(valid)):
        await peer.send(valid[:cut], target.address)
    await peer.send(valid + bytes(MAX_DATAGRAM_SIZE), target.address)
    await still_serves(peer, target)
    assert target.dropped_datagrams == len(valid)
    assert len(target.routing_table) == 0  # no truncated request got its sender added


async def test_valid_header_with_a_wrong_body(target: DHTNode, peer: RawPeer) -> None:
    header = struct.pack("!BBBI", messages.VERSION, Command.LOOKUP, 0, 1)
    await peer.send(header + b"\x00" * 5, target.address)  # LOOKUP wants a 32-byte topic
    reply_header = struct.pack("!BBBI", messages.VERSION, Command.PING | 0x80, 0, 2)
    await peer.send(reply_header + b"garbage", target.address)  # a reply nobody asked for
    await still_serves(peer, target)
    assert target.dropped_datagrams == 2
    # Well-formed datagram, garbage record inside: refused with a status, not a crash.
    assert await announce(peer, target, b"\x01" * 200) is Status.INVALID_RECORD


async def test_forged_signature(target: DHTNode, peer: RawPeer) -> None:
    data = bytearray(signed(KeyPair.generate()))
    data[-5] ^= 0xFF
    assert await announce(peer, target, bytes(data)) is Status.INVALID_RECORD
    assert target.stored_records == 0


async def test_record_replayed_under_another_topic(target: DHTNode, peer: RawPeer) -> None:
    data = bytearray(signed(KeyPair.generate()))
    data[2:34] = topic("another topic")
    assert await announce(peer, target, bytes(data)) is Status.INVALID_RECORD
    assert target.stored_records == 0


async def test_announce_without_a_valid_token(peer: RawPeer) -> None:
    clock = FakeClock()
    async with DHTNode(ephemeral=False, clock=clock, token_rotation=60) as target:
        record = signed(KeyPair.generate())
        assert await announce(peer, target, record, token=bytes(32)) is Status.BAD_TOKEN
        assert await announce(peer, target, record, token=os.urandom(32)) is Status.BAD_TOKEN
        stale = await peer.token_from(target.address, TOPIC)
        clock.advance(121)  # two rotations later
        assert await announce(peer, target, record, token=stale) is Status.BAD_TOKEN
        assert target.stored_records == 0
        assert await announce(peer, target, record) is Status.OK
        assert target.stored_records == 1


async def test_record_for_an_address_the_sender_does_not_own(
    target: DHTNode, peer: RawPeer
) -> None:
    elsewhere = PeerAddress("127.0.0.2", 80, AddressKind.DIRECT)
    record = signed(KeyPair.generate(), addresses=(elsewhere,))
    assert await announce(peer, target, record) is Status.ADDRESS_MISMATCH
    own = PeerAddress("127.0.0.1", 80, AddressKind.DIRECT)
    assert await announce(peer, target, signed(KeyPair.generate(), addresses=(own,))) is Status.OK
    assert target.stored_records == 1


async def test_expired_record(target: DHTNode, peer: RawPeer) -> None:
    record = signed(KeyPair.generate(), expiry=target.clock() - 1)
    assert await announce(peer, target, record) is Status.EXPIRED
    assert target.stored_records == 0


async def test_flood_from_many_keys_stays_under_the_caps(peer: RawPeer) -> None:
    async with DHTNode(ephemeral=False, max_records=60, max_records_per_topic=25) as target:
        token = await peer.token_from(target.address, TOPIC)
        for i in range(300):
            record = signed(KeyPair.generate(), t=topic(str(i % 4)))
            assert await announce(peer, target, record, token) is Status.OK
            assert target.stored_records <= 60
        assert target.stored_records == 60
        await still_serves(peer, target)


async def test_ephemeral_nodes_store_nothing(peer: RawPeer) -> None:
    async with DHTNode(ephemeral=True) as node:
        reply = await peer.request(node.address, Request(Command.LOOKUP, new_rid(), key=TOPIC))
        assert reply.token is None and reply.node_id is None
        status = await announce(peer, node, signed(KeyPair.generate()), token=bytes(32))
        assert status is Status.NOT_STORING


async def test_a_node_that_never_answers_costs_at_most_the_budget() -> None:
    silent = await open_raw_peer()
    async with silent.sock, DHTNode(request_timeout=0.2, first_retransmit=0.05, retries=2) as node:
        assert node.request_budget == pytest.approx(0.05 + 0.1 + 0.2)
        with anyio.fail_after(node.request_budget + 1.0), pytest.raises(DHTTimeoutError):
            await node.ping(silent.address)
        # Every attempt was sent before the error; a marker sent now queues behind them.
        marker = await open_raw_peer()
        async with marker.sock:
            await marker.send(b"marker", silent.address)
        attempts = 0
        with anyio.fail_after(5):
            while (await silent.sock.receive())[0] != b"marker":
                attempts += 1
        assert attempts == 3


async def test_a_dead_node_in_the_routing_table_does_not_stall_lookups() -> None:
    key_pair = KeyPair.generate()
    silent = await open_raw_peer()
    options = QUICK
    async with (
        silent.sock,
        create_testnet(5, **options) as testnet,
        DHTNode(bootstrap=testnet.bootstrap, **options) as client,
    ):
        await client.announce(TOPIC, key_pair, 9)
        client.routing_table.add_contact(Node(bytes(20), *silent.address))
        with anyio.fail_after(client.request_budget + 2.0):
            async with client.lookup(TOPIC) as found:
                assert [r.public_key async for r in found] == [key_pair.public_key]
        # After a full failed request (all retransmits), the dead contact is dropped.
        assert not client.routing_table.contains(bytes(20))


def garbage_replies(request: Request, source: tuple[str, int]) -> list[bytes]:
    """Every flavour of broken reply to one request."""
    header = struct.pack("!BBBI", messages.VERSION, request.command | 0x80, 0, request.rid)
    return [
        os.urandom(50),
        header,  # truncated right after the header
        header + b"\x04\x7f\x00\x00\x01" + os.urandom(40),
        Response(request.command, request.rid ^ 1, source).encode(),  # wrong rid
    ]


async def serve_fake_node(
    raw: RawPeer, answer: Callable[[Request, tuple[str, int]], list[bytes]]
) -> None:
    while True:
        data, source = await raw.sock.receive()
        message = messages.decode(data)
        if isinstance(message, Request):
            for reply in answer(message, (str(source[0]), int(source[1]))):
                await raw.sock.sendto(reply, *source)


async def test_a_node_that_answers_with_garbage() -> None:
    liar = await open_raw_peer()
    async with liar.sock, anyio.create_task_group() as tg:
        tg.start_soon(serve_fake_node, liar, garbage_replies)
        async with DHTNode(**QUICK) as node:
            with pytest.raises(DHTTimeoutError):
                await node.ping(liar.address)
            assert node.dropped_datagrams >= 8
            async with create_testnet(3) as testnet:
                # The node still works with honest nodes after all that.
                reply = await node.ping(testnet.bootstrap[0])
                assert reply.node_id == testnet.nodes[0].node_id
        tg.cancel_scope.cancel()


async def test_lying_records_in_lookup_replies_are_dropped() -> None:
    honest = KeyPair.generate()
    other_topic_record = signed(KeyPair.generate(), t=topic("elsewhere"))
    forged = bytearray(signed(KeyPair.generate()))
    forged[-1] ^= 1
    expired = signed(KeyPair.generate(), expiry=1.0)
    valid = signed(honest)
    unsigned_prefix = signed(KeyPair.generate())[:-64]
    wrong_key = unsigned_prefix + KeyPair.generate().sign(ANNOUNCE_DOMAIN + unsigned_prefix)

    misplaced = signed(KeyPair.generate())  # valid, but beside an address no peer has

    def answer(request: Request, source: tuple[str, int]) -> list[bytes]:
        records = (
            *(
                ("127.0.0.1", blob)
                for blob in (other_topic_record, bytes(forged), expired, wrong_key, b"junk")
            ),
            ("224.0.0.1", misplaced),
            ("127.0.0.1", valid),
        )
        bogus_contact = NodeContact(os.urandom(20), "127.0.0.1", 9)  # nothing listens there
        return [
            Response(
                request.command,
                request.rid,
                source,
                os.urandom(20),
                token=bytes(32),
                nodes=(bogus_contact,),
                records=records,
            ).encode()
        ]

    liar = await open_raw_peer()
    async with liar.sock, anyio.create_task_group() as tg:
        tg.start_soon(serve_fake_node, liar, answer)
        options = QUICK
        async with (
            DHTNode(bootstrap=[liar.address], **options) as node,
            node.lookup(TOPIC) as found,
        ):
            records = [r async for r in found]
        assert [r.public_key for r in records] == [honest.public_key]
        tg.cancel_scope.cancel()


async def test_replies_from_the_wrong_address_are_ignored(peer: RawPeer) -> None:
    silent = await open_raw_peer()
    async with silent.sock, DHTNode(request_timeout=0.3, first_retransmit=0.3, retries=0) as node:
        async with anyio.create_task_group() as tg:

            async def spoof() -> None:
                data, _ = await silent.sock.receive()
                request = messages.decode(data)
                assert isinstance(request, Request)
                # Right rid, wrong source: a spoofer racing the real node.
                reply = Response(request.command, request.rid, node.address, os.urandom(20))
                await peer.send(reply.encode(), node.address)

            tg.start_soon(spoof)
            with pytest.raises(DHTTimeoutError):
                await node.ping(silent.address)
        assert node.dropped_datagrams == 1
        assert len(node.routing_table) == 0


async def test_a_burst_beyond_100_datagrams_is_fully_served(target: DHTNode) -> None:
    """150 requests sent back to back (more than anyio's asyncio UDP queue holds): all answered."""
    burst = 150
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.bind(("127.0.0.1", 0))
        rids = {new_rid() for _ in range(burst)}
        for rid in rids:  # sent back to back, without yielding to the event loop
            sock.sendto(Request(Command.PING, rid, padding=16).encode(), target.address)
        sock.setblocking(False)
        answered: set[int] = set()
        with anyio.fail_after(5):
            while answered != rids:
                await anyio.wait_readable(sock)
                while True:
                    try:
                        data = sock.recv(MAX_DATAGRAM_SIZE)
                    except BlockingIOError:
                        break
                    reply = messages.decode(data)
                    assert isinstance(reply, Response)
                    answered.add(reply.rid)
    assert len(answered) == burst


async def test_a_requester_enters_the_routing_table_only_once_its_address_answers(
    target: DHTNode, peer: RawPeer
) -> None:
    claimed = os.urandom(20)
    find = Request(Command.FIND_NODE, new_rid(), claimed, key=os.urandom(20))
    await peer.request(target.address, find)
    assert not target.routing_table.contains(claimed)  # a forged source would stop here
    with anyio.fail_after(5):
        while True:  # the node pings the claimed address back
            data, source = await peer.sock.receive()
            check = messages.decode(data)
            if isinstance(check, Request) and check.command is Command.PING:
                break
    assert not target.routing_table.contains(claimed)
    answer = Response(Command.PING, check.rid, (str(source[0]), source[1]), claimed)
    await peer.send(answer.encode(), target.address)
    await still_serves(peer, target)  # read after the answer: it has been taken
    assert target.routing_table.address_of(claimed) == peer.address


async def test_a_requester_with_our_token_is_added_at_once(target: DHTNode, peer: RawPeer) -> None:
    token = await peer.token_from(target.address, TOPIC)
    claimed = os.urandom(20)
    find = Request(Command.FIND_NODE, new_rid(), claimed, key=os.urandom(20), token=token)
    await peer.request(target.address, find)
    assert target.routing_table.address_of(claimed) == peer.address


async def test_a_forged_request_cannot_move_a_known_node(peer: RawPeer) -> None:
    async with create_testnet(2, **QUICK) as testnet:
        first, second = testnet.nodes
        await first.refresh()
        assert first.routing_table.address_of(second.node_id) == second.address
        hijack = Request(Command.PING, new_rid(), second.node_id, padding=16)
        await peer.request(first.address, hijack)
        # The ping back goes to the raw peer, which stays silent: nothing changes.
        assert first.routing_table.address_of(second.node_id) == second.address


async def test_unsolicited_replies_are_dropped_and_cost_no_budget(
    target: DHTNode, peer: RawPeer
) -> None:
    """Replies spend no request budget, so a flood of them must be cheap to refuse."""
    junk_reply = Response(
        Command.LOOKUP,
        1,
        peer.address,
        os.urandom(20),
        nodes=tuple(NodeContact(os.urandom(20), "127.0.0.1", 1000 + i) for i in range(20)),
    ).encode()
    for _ in range(50):  # few enough that the kernel's socket buffer keeps them all
        await peer.send(junk_reply, target.address)
    await still_serves(peer, target)
    assert target.dropped_datagrams == 50
    assert len(target.routing_table) == 0 and target.throttled_requests == 0
