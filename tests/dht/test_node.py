"""DHTNode end to end on real UDP over 127.0.0.1, on asyncio and trio."""

from __future__ import annotations

import socket

import anyio
import anyio.abc
import pytest
from kademlia.node import Node

from p2pswarm.dht import DHTNode, NatType, create_testnet
from p2pswarm.dht.messages import Command, Request
from p2pswarm.dht.node import PEER_REPLICAS
from p2pswarm.errors import DHTError, DHTTimeoutError
from p2pswarm.keys import KeyPair, topic
from p2pswarm.networks.discovery_backend import DiscoveryBackend, Lookup
from p2pswarm.peer_record import AddressKind, PeerAddress
from p2pswarm.testing import FakeClock

from .helpers import new_rid, open_raw_peer

pytestmark = pytest.mark.anyio


async def collect(node: DHTNode, t: bytes) -> dict[bytes, int]:
    async with node.lookup(t) as found:
        return {record.public_key: record.addresses[0].port async for record in found}


async def test_node_satisfies_the_discovery_interface() -> None:
    async with create_testnet(2) as testnet, DHTNode(bootstrap=testnet.bootstrap) as node:
        assert isinstance(node, DiscoveryBackend)
        lookup = node.lookup(topic("x"))
        assert isinstance(lookup, Lookup)
        await lookup.aclose()


@pytest.mark.parametrize("size", [10, 50])
async def test_every_announcer_is_found_from_every_node(size: int) -> None:
    t = topic(f"many announcers {size}")
    announcers = [KeyPair.generate() for _ in range(12)]
    async with create_testnet(size) as testnet:
        async with DHTNode(bootstrap=testnet.bootstrap) as client:
            for port, key_pair in enumerate(announcers, start=2000):
                await client.announce(t, key_pair, port)
        expected = {kp.public_key: port for port, kp in enumerate(announcers, start=2000)}
        for node in testnet.nodes:
            assert await collect(node, t) == expected
        async with DHTNode(bootstrap=testnet.bootstrap) as reader:
            assert await collect(reader, t) == expected
        # Everyone shares 127.0.0.1 and nobody was ever throttled or left unanswered.
        assert sum(node.throttled_requests for node in testnet.nodes) == 0
        assert sum(node.unpaid_requests for node in testnet.nodes) == 0


async def test_records_carry_the_observed_ip_and_relays() -> None:
    t = topic("addresses")
    key_pair = KeyPair.generate()
    relay = PeerAddress("127.0.0.1", 4444, AddressKind.RELAY)
    async with create_testnet(5) as testnet, DHTNode(bootstrap=testnet.bootstrap) as client:
        await client.announce(t, key_pair, 3333, addresses=[relay])
        async with client.lookup(t) as found:
            records = [r async for r in found]
    assert len(records) == 1
    assert records[0].public_key == key_pair.public_key
    assert records[0].topic == t
    assert records[0].addresses == (PeerAddress("127.0.0.1", 3333), relay)


async def test_reannounce_replaces_the_older_record() -> None:
    t = topic("reannounce")
    key_pair = KeyPair.generate()
    async with create_testnet(5) as testnet, DHTNode(bootstrap=testnet.bootstrap) as client:
        await client.announce(t, key_pair, 1000)
        await client.announce(t, key_pair, 1001)
        for node in testnet.nodes:
            assert await collect(node, t) == {key_pair.public_key: 1001}
            assert node.stored_records == 1


async def test_unannounce_removes_the_record_everywhere() -> None:
    t = topic("unannounce")
    stays, leaves = KeyPair.generate(), KeyPair.generate()
    async with create_testnet(10) as testnet, DHTNode(bootstrap=testnet.bootstrap) as client:
        await client.announce(t, stays, 1)
        await client.announce(t, leaves, 2)
        await client.unannounce(t, leaves)
        for node in testnet.nodes:
            assert await collect(node, t) == {stays.public_key: 1}


async def test_find_peer_by_public_key() -> None:
    key_pair = KeyPair.generate()
    async with create_testnet(10) as testnet:
        async with DHTNode(bootstrap=testnet.bootstrap) as server:
            await server.announce_self(key_pair, 7777)
        async with DHTNode(bootstrap=testnet.bootstrap) as client:
            found = await client.find_peer(key_pair.public_key)
            assert found is not None
            assert found.public_key == key_pair.public_key
            assert found.topic is None
            assert found.addresses == (PeerAddress("127.0.0.1", 7777),)
            assert await client.find_peer(KeyPair.generate().public_key) is None
            # A topic announce is not a key announce, even under the key's own bytes.
            other = KeyPair.generate()
            await client.announce(other.public_key, other, 1)
            assert await client.find_peer(other.public_key) is None


async def test_peer_records_live_on_the_closest_few_nodes() -> None:
    key_pair = KeyPair.generate()
    async with create_testnet(10) as testnet, DHTNode(bootstrap=testnet.bootstrap) as server:
        await server.announce_self(key_pair, 7777)
        assert sum(node.stored_records for node in testnet.nodes) == PEER_REPLICAS
        for node in testnet.nodes:
            found = await node.find_peer(key_pair.public_key)
            assert found is not None and found.addresses == (PeerAddress("127.0.0.1", 7777),)
        await server.unannounce_self(key_pair)
        assert sum(node.stored_records for node in testnet.nodes) == 0
        assert await server.find_peer(key_pair.public_key) is None


async def test_records_expire_with_the_clock() -> None:
    clock = FakeClock()
    t = topic("expiry")
    key_pair = KeyPair.generate()
    async with (
        create_testnet(5, clock=clock) as testnet,
        DHTNode(bootstrap=testnet.bootstrap, clock=clock) as client,
    ):
        await client.announce(t, key_pair, 1)
        clock.advance(19 * 60)
        assert await collect(client, t) == {key_pair.public_key: 1}
        clock.advance(61)
        assert await collect(client, t) == {}
        # The lookup visited every node, and each dropped the expired record on read.
        assert [node.stored_records for node in testnet.nodes] == [0] * 5


async def test_ephemeral_nodes_stay_out_of_routing_tables() -> None:
    async with create_testnet(5) as testnet, DHTNode(bootstrap=testnet.bootstrap) as client:
        await client.announce(topic("e"), KeyPair.generate(), 1)
        assert len(client.routing_table) == 5
        for node in testnet.nodes:
            assert not node.routing_table.contains(client.node_id)
            assert len(node.routing_table) == 4


async def test_nat_reports_our_observed_address() -> None:
    async with create_testnet(4) as testnet, DHTNode(bootstrap=testnet.bootstrap) as client:
        assert client.observed_address == client.address
        assert client.nat.nat_type is NatType.OPEN
        assert client.nat.reporters == 4
        assert f"127.0.0.1:{client.address[1]}" in repr(client)
        assert "contacts=4" in repr(client)


async def test_announce_without_any_reachable_node_fails() -> None:
    async with DHTNode(bootstrap=[], request_timeout=0.05, first_retransmit=0.01) as lonely:
        with pytest.raises(DHTError):
            await lonely.announce(topic("nobody"), KeyPair.generate(), 1)
        async with lonely.lookup(topic("nobody")) as found:
            assert [r async for r in found] == []


async def test_aclose_is_idempotent_and_stops_requests() -> None:
    async with create_testnet(2) as testnet:
        node = DHTNode(bootstrap=testnet.bootstrap)
        async with node:
            await node.aclose()
            await node.aclose()
            assert node.closed
            with pytest.raises(DHTError):
                await node.ping(testnet.bootstrap[0])
            with pytest.raises(DHTError):
                node.lookup(topic("closed")).__aiter__()._start()
        await node.aclose()


async def test_aclose_wakes_requests_in_flight() -> None:
    async with (
        DHTNode(request_timeout=30, first_retransmit=30) as node,
        await anyio.create_udp_socket(local_host="127.0.0.1") as silent,
    ):
        address = silent.extra(anyio.abc.SocketAttribute.local_address)[:2]
        errors: list[BaseException] = []

        async def ping() -> None:
            try:
                await node.ping((str(address[0]), int(address[1])))
            except DHTError as exc:
                errors.append(exc)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(ping)
                await silent.receive()  # the request is in flight
                await node.aclose()
        assert len(errors) == 1 and not isinstance(errors[0], DHTTimeoutError)


async def test_bootstrap_from_a_hostname() -> None:
    async with create_testnet(3) as testnet:
        port = testnet.bootstrap[0][1]
        async with DHTNode(bootstrap=[("localhost", port)]) as node:
            assert len(node.routing_table) == 3


def _ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback_available(), reason="no IPv6 loopback")
async def test_an_ipv6_testnet_on_the_loopback() -> None:
    t = topic("v6")
    key_pair = KeyPair.generate()
    async with (
        create_testnet(4, host="::1") as testnet,
        DHTNode(bootstrap=testnet.bootstrap, host="::1") as client,
    ):
        await client.announce(t, key_pair, 6000)
        async with client.lookup(t) as found:
            records = [r async for r in found]
        assert [r.addresses for r in records] == [(PeerAddress("::1", 6000),)]
        assert client.observed_address == client.address


def test_a_node_can_be_made_outside_the_event_loop() -> None:
    node = DHTNode(bootstrap=[("127.0.0.1", 1)])
    assert not node.closed and node.ephemeral
    assert repr(node).startswith("<DHTNode ephemeral not running id=")
    with pytest.raises(RuntimeError):
        _ = node.address


async def test_an_ephemeral_node_can_introduce_a_newcomer() -> None:
    t = topic("introduced")
    key_pair = KeyPair.generate()
    async with (
        create_testnet(4) as testnet,
        DHTNode(bootstrap=testnet.bootstrap) as ephemeral,
        DHTNode(bootstrap=[ephemeral.address]) as newcomer,
    ):
        assert len(newcomer.routing_table) == 4  # learnt from the ephemeral node's contacts
        await newcomer.announce(t, key_pair, 1)
        assert await collect(testnet.nodes[0], t) == {key_pair.public_key: 1}


async def test_lookup_streams_records_before_the_query_ends() -> None:
    t = topic("streaming")
    key_pair = KeyPair.generate()
    silent = await anyio.create_udp_socket(local_host="127.0.0.1")
    host, port = silent.extra(anyio.abc.SocketAttribute.local_address)[:2]
    slow = {"request_timeout": 60.0, "first_retransmit": 60.0, "retries": 0}
    async with (
        silent,
        create_testnet(3) as testnet,
        DHTNode(bootstrap=testnet.bootstrap, **slow) as client,
    ):
        await client.announce(t, key_pair, 5)
        # A contact that never answers keeps the query open for a minute...
        client.routing_table.add_contact(Node(bytes(20), str(host), int(port)))
        with anyio.fail_after(10):
            async with client.lookup(t) as found:
                # ...yet the record arrives now, and closing stops the query.
                first = await found.__anext__()
                assert first.public_key == key_pair.public_key


async def test_bad_arguments_are_refused_before_any_traffic() -> None:
    async with DHTNode() as node:
        key_pair = KeyPair.generate()
        with pytest.raises(ValueError):
            await node.announce(b"short", key_pair, 1)
        with pytest.raises(TypeError):
            await node.announce("a topic name", key_pair, 1)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await node.announce(topic("t"), key_pair, 70000)
        with pytest.raises(TypeError):
            await node.announce(topic("t"), key_pair.public_key, 1)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await node.announce(
                topic("t"), key_pair, 1, addresses=[PeerAddress("127.0.0.1", 9)] * 5
            )
        with pytest.raises(ValueError):
            node.lookup(bytes(31))
        with pytest.raises(ValueError):
            await node.find_peer(bytes(33))


def test_constructor_checks_its_arguments() -> None:
    with pytest.raises(ValueError):
        DHTNode(node_id=bytes(32))
    with pytest.raises(ValueError):
        DHTNode(alpha=0)
    with pytest.raises(ValueError):
        DHTNode(request_timeout=0)


async def test_a_busy_topic_is_sampled_twenty_records_per_reply() -> None:
    t = topic("busy")
    async with create_testnet(3) as testnet, DHTNode(bootstrap=testnet.bootstrap) as client:
        for port in range(1, 26):
            await client.announce(t, KeyPair.generate(), port)
        peer = await open_raw_peer()
        async with peer.sock:
            reply = await peer.request(
                testnet.bootstrap[0], Request(Command.LOOKUP, new_rid(), key=t)
            )
        assert len(reply.records) == 20
        assert testnet.nodes[0].stored_records == 25
        async with client.lookup(t) as found:
            assert 20 <= len({r.public_key async for r in found}) <= 25
