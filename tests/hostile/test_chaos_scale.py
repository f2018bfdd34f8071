"""The chaos run (Hyperswarm's chaos.js) at scale: swarms join random topics, random
connections are killed, and every swarm ends with exactly the peers it shares a topic with.

tests/swarm/test_swarm_mesh.py keeps the 10 swarms / 15 topics / 30 kills run; here a small
one for the default suite and the 20 swarms / 30 topics / 100 kills one, ``slow``.
"""

from __future__ import annotations

import random

import anyio
import pytest

from p2pswarm import topic
from p2pswarm.connection import Connection
from p2pswarm.swarm import Swarm
from tests.swarm.helpers import swarm_net

pytestmark = pytest.mark.anyio


def _remote_keys(swarm: Swarm) -> set[bytes]:
    return {conn.remote_public_key for conn in swarm.connections}


async def chaos(n_swarms: int, n_topics: int, n_kills: int, *, nodes: int) -> None:
    rng = random.Random(f"p2pswarm chaos {n_swarms} {n_topics} {n_kills}")
    topics = [topic(f"chaos-scale-{i}") for i in range(n_topics)]
    async with swarm_net(n_swarms, nodes=nodes) as (swarms, watch, _):
        joined: dict[Swarm, set[bytes]] = {s: set() for s in swarms}
        for t in topics:
            for swarm in rng.sample(swarms, rng.randint(2, 5)):
                joined[swarm].add(t)
        for swarm, ts in joined.items():
            for t in sorted(ts):
                swarm.join(t)
        expected = {
            swarm: {
                other.key_pair.public_key
                for other in swarms
                if other is not swarm and joined[swarm] & joined[other]
            }
            for swarm in swarms
        }

        def settled() -> bool:
            return all(_remote_keys(s) == expected[s] for s in swarms)

        await watch.wait(settled, 60)
        kills: dict[frozenset[bytes], int] = {}

        def killable() -> list[Connection]:
            # At most 3 kills per pair: the 4th close in a row is where Hyperswarm's policy
            # gives a (non-explicit) peer up until discovery finds it again.
            return [
                conn
                for swarm in swarms
                for conn in swarm.connections
                if kills.get(frozenset((conn.public_key, conn.remote_public_key)), 0) < 3
            ]

        for _ in range(n_kills):
            await watch.wait(lambda: killable() != [], 60)
            victim = rng.choice(sorted(killable(), key=lambda c: c.handshake_hash))
            pair = frozenset((victim.public_key, victim.remote_public_key))
            kills[pair] = kills.get(pair, 0) + 1
            await victim.aclose()
            await anyio.lowlevel.checkpoint()
        assert sum(kills.values()) == n_kills
        await watch.wait(settled, 60)
        for swarm in swarms:
            assert _remote_keys(swarm) == expected[swarm]
            assert len(swarm.connections) == len(expected[swarm])


async def test_chaos_6_swarms_8_topics_12_kills() -> None:
    await chaos(6, 8, 12, nodes=5)


@pytest.mark.slow
async def test_chaos_20_swarms_30_topics_100_kills() -> None:
    await chaos(20, 30, 100, nodes=10)
