"""Stress: a ten-swarm full mesh (dups.js) and the chaos run (chaos.js)."""

from __future__ import annotations

import random

import anyio
import pytest

from p2pswarm import topic
from p2pswarm.connection import Connection
from p2pswarm.swarm import Swarm

from .helpers import swarm_net

pytestmark = pytest.mark.anyio


def _remote_keys(swarm: Swarm) -> set[bytes]:
    return {conn.remote_public_key for conn in swarm.connections}


async def test_ten_swarms_reach_a_full_mesh_without_duplicates() -> None:
    t = topic("full-mesh")
    async with swarm_net(10, nodes=10) as (swarms, watch, _):
        for swarm in swarms:
            swarm.join(t, client=False)
        for swarm in swarms:
            await swarm.status(t).flushed()  # type: ignore[union-attr]
        for swarm in swarms:
            swarm.join(t, server=False)  # now clients as well
        await watch.wait(lambda: all(len(set(watch.remote_keys(s))) == 9 for s in swarms))
        for swarm in swarms:
            await swarm.flush()
        for swarm in swarms:
            others = {s.key_pair.public_key for s in swarms if s is not swarm}
            assert _remote_keys(swarm) == others
            assert set(watch.remote_keys(swarm)) == others
            assert len(swarm.connections) == 9 and watch.count(swarm) == 9


@pytest.mark.slow
async def test_chaos_every_swarm_ends_with_exactly_the_expected_peers() -> None:
    rng = random.Random("p2pswarm chaos")
    topics = [topic(f"chaos-{i}") for i in range(15)]
    async with swarm_net(10, nodes=10) as (swarms, watch, _):
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

        await watch.wait(settled)
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

        for _ in range(30):
            await watch.wait(lambda: killable() != [])
            victim = rng.choice(sorted(killable(), key=lambda c: c.handshake_hash))
            pair = frozenset((victim.public_key, victim.remote_public_key))
            kills[pair] = kills.get(pair, 0) + 1
            await victim.aclose()
            await anyio.lowlevel.checkpoint()
        assert sum(kills.values()) == 30
        await watch.wait(settled, 30)
        for swarm in swarms:
            assert _remote_keys(swarm) == expected[swarm]
            assert len(swarm.connections) == len(expected[swarm])


async def test_everyone_dialling_everyone_never_hands_out_a_duplicate() -> None:
    """All swarms join at once and then all refresh at once, so every pair dials both ways
    repeatedly; at every hand-off no other open connection to that peer may exist."""
    t = topic("refresh-storm")
    async with swarm_net(8, nodes=5, watch=False) as (swarms, watch, _):
        violations: list[str] = []
        handed: dict[Swarm, list[bytes]] = {s: [] for s in swarms}

        for swarm in swarms:

            def check(conn: Connection, info: object, swarm: Swarm = swarm) -> None:
                others = [
                    c
                    for c in swarm.connections
                    if c is not conn and c.remote_public_key == conn.remote_public_key
                ]
                if others:
                    violations.append(f"{swarm!r} got a second connection to one peer")
                handed[swarm].append(conn.remote_public_key)

            swarm.on_connection(check)
            swarm.on_update(watch.notify)
        sessions = [s.join(t) for s in swarms]
        for session in sessions:
            await session.flushed()
        async with anyio.create_task_group() as tg:
            for session in sessions:
                tg.start_soon(session.refresh)
        for swarm in swarms:
            await swarm.flush()
        await watch.wait(lambda: all(len(s.connections) == 7 for s in swarms))
        for swarm in swarms:
            await swarm.flush()
        assert violations == []
        for swarm in swarms:
            assert len(handed[swarm]) == len(set(handed[swarm])) == 7
