"""A server's announce round (``announcer.js``): FIND_PEER, then the three best replies."""

from __future__ import annotations

import pytest

from p2pswarm.hyperdht import create_testnet
from p2pswarm.hyperdht.announcer import BEST_RELAYS, announce_to_best, pick_best
from p2pswarm.hyperdht.records import hash32
from p2pswarm.keys import KeyPair
from p2pswarm.protocol.dht_rpc import node_id

pytestmark = pytest.mark.anyio

SERVER = KeyPair.from_seed(b"s" * 32)


def _xor(a: bytes, b: bytes) -> int:
    return int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


async def test_a_server_announces_to_the_three_closest_nodes_only() -> None:
    target = hash32(SERVER.public_key)
    async with create_testnet(8) as testnet:
        storing = [node.address for node in testnet.nodes]
        server = await testnet.create_node()
        announced = await announce_to_best(server, target, SERVER)
        nearest = sorted(storing, key=lambda a: _xor(node_id(*a), target))[:BEST_RELAYS]
        assert sorted(r.relay_address for r in announced.relays) == sorted(nearest)
        # each relay saw us at our client socket's address
        assert {r.peer_address.port for r in announced.relays} == {server.address[1]}
        assert len(announced.closest_nodes) == len(storing)

        client = await testnet.create_node()
        routes = [reply async for reply in client.find_peer_routes(target)]
        assert sorted(r.from_address for r in routes) == sorted(nearest)
        assert all(r.public_key == SERVER.public_key for r in routes)
        found = await client.find_peer(SERVER.public_key)
        assert found is not None and found.from_address in nearest

        # the next round, seeded from this one's closest nodes, lands on the same three
        again = await announce_to_best(server, target, SERVER, nodes=announced.closest_nodes)
        assert sorted(r.relay_address for r in again.relays) == sorted(nearest)


async def test_a_round_on_an_empty_network_takes_no_relay() -> None:
    async with create_testnet(1) as testnet:
        lonely = await testnet.create_node()
        await testnet.nodes[0].aclose()  # nobody left to answer
        announced = await announce_to_best(lonely, hash32(SERVER.public_key), SERVER)
        assert announced.relays == []


def test_pick_best_takes_the_first_three_of_the_closest() -> None:
    assert pick_best([]) == []
    replies = list(range(5))
    assert pick_best(replies) == [0, 1, 2]  # type: ignore[arg-type]
