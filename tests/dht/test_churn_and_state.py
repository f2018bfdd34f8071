"""Node churn and routing state that survives a restart."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from p2pswarm.dht import DHTNode, create_testnet, load_routing_state
from p2pswarm.keys import KeyPair, topic

from .helpers import QUICK

pytestmark = pytest.mark.anyio

FAST = QUICK


async def test_lookups_survive_losing_30_percent_of_the_nodes() -> None:
    t = topic("churn")
    announcers = [KeyPair.generate() for _ in range(8)]
    # ksize 8: each record lives on 8 nodes, more than the 6 that die, so some copy survives
    # and the lookups must route around the dead to reach it.
    async with create_testnet(20, ksize=8, **FAST) as testnet:
        async with DHTNode(bootstrap=testnet.bootstrap, ksize=8, **FAST) as client:
            for port, key_pair in enumerate(announcers, start=100):
                await client.announce(t, key_pair, port)
        victims = testnet.nodes[::3][:6]  # the bootstrap node among them
        assert len(victims) == 6
        for victim in victims:
            await testnet.remove_node(victim)
        expected = {kp.public_key for kp in announcers}
        results: dict[int, set[bytes]] = {}

        async def look(index: int, node: DHTNode) -> None:
            async with node.lookup(t) as found:
                results[index] = {r.public_key async for r in found}

        async with anyio.create_task_group() as tg:
            for index, node in enumerate(testnet.nodes):
                tg.start_soon(look, index, node)
        assert results == dict.fromkeys(range(14), expected)
        # Announcing again after the churn still reaches enough live nodes.
        late = KeyPair.generate()
        survivor = testnet.nodes[0]
        await survivor.announce(t, late, 200)
        async with testnet.nodes[-1].lookup(t) as found:
            assert late.public_key in {r.public_key async for r in found}


async def test_routing_state_is_saved_and_restored(tmp_path: Path) -> None:
    t = topic("restart")
    key_pair = KeyPair.generate()
    path = tmp_path / "routing.json"
    async with create_testnet(6) as testnet:
        async with DHTNode(bootstrap=testnet.bootstrap, ephemeral=False) as node:
            await node.announce(t, key_pair, 42)
            node.save_routing_state(path)
            node_id = node.node_id
            known = len(node.routing_table)
        state = load_routing_state(path)
        assert state.node_id == node_id and len(state.nodes) == known == 6
        # Restart with no bootstrap list but the saved contacts: the network is reachable.
        async with DHTNode(
            bootstrap=state.addresses, node_id=state.node_id, ephemeral=False
        ) as restarted:
            assert restarted.node_id == node_id
            async with restarted.lookup(t) as found:
                assert [r.public_key async for r in found] == [key_pair.public_key]


async def test_refresh_drops_dead_contacts() -> None:
    async with create_testnet(4, **FAST) as testnet:
        watcher = testnet.nodes[1]
        victim = testnet.nodes[3]
        # The victim's first requests only got it pinged back (its address unproven), so
        # walk once: every node answers, and answering is what puts a node in the table.
        await watcher.refresh()
        assert watcher.routing_table.contains(victim.node_id)
        await testnet.remove_node(victim)
        await watcher.refresh()
        assert not watcher.routing_table.contains(victim.node_id)
        assert len(watcher.routing_table) == 2
