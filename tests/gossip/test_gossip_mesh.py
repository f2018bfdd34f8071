"""Gossip across a partial mesh of 30 swarms, none connected to all; bad input on the way."""

from __future__ import annotations

import anyio
import pytest

from p2pswarm import Swarm, topic
from p2pswarm.gossip import Gossip, GossipMessage

from .helpers import diameter, partial_mesh, ring_with_chords, wait_for

pytestmark = pytest.mark.anyio
ROOM = topic("gossip room")
N = 30


class Inbox:
    def __init__(self) -> None:
        self.got: dict[int, list[GossipMessage]] = {}
        self.event = anyio.Event()

    def changed(self) -> anyio.Event:
        return self.event

    def add(self, i: int, message: GossipMessage) -> None:
        self.got.setdefault(i, []).append(message)
        self.event.set()
        self.event = anyio.Event()


async def test_broadcast_reaches_all_30_swarms_of_a_partial_mesh_once() -> None:
    edges = ring_with_chords(N)
    assert diameter(N, edges) <= 10
    gossips: list[Gossip] = []
    inbox = Inbox()

    def setup(i: int, swarm: Swarm) -> None:
        gossip = Gossip(swarm, ROOM)
        gossip.on_message(lambda m, i=i: inbox.add(i, m))
        gossips.append(gossip)

    async with partial_mesh(N, edges, setup=setup) as swarms:
        degree = dict.fromkeys(range(N), 0)
        for a, b in edges:
            degree[a] += 1
            degree[b] += 1

        def meshed() -> bool:
            return all(len(g.neighbours) == degree[i] for i, g in enumerate(gossips))

        await wait_for(meshed, lambda: _any_change(gossips))
        assert max(len(s.connections) for s in swarms) < N - 1  # nobody is connected to all
        first = await gossips[0].broadcast(b"hello mesh")
        second = await gossips[17].broadcast(b"and back")

        def delivered() -> bool:
            return all(
                len(inbox.got.get(i, [])) == (2 if i not in (0, 17) else 1) for i in range(N)
            )

        await wait_for(delivered, inbox.changed)
        for i in range(N):
            ids = [m.id for m in inbox.got.get(i, [])]
            assert len(ids) == len(set(ids))  # each exactly once
            assert (first in ids) == (i != 0) and (second in ids) == (i != 17)
        assert sum(g.stats.duplicates for g in gossips) > 0  # the mesh did send copies
        assert all(g.stats.invalid == 0 for g in gossips)
        message = next(m for m in inbox.got[1] if m.id == first)
        assert message.origin == swarms[0].key_pair.public_key and message.payload == b"hello mesh"


def _any_change(gossips: list[Gossip]) -> anyio.Event:
    """An event set when any gossip's neighbour set changes."""
    event = anyio.Event()
    for gossip in gossips:
        gossip._changed = event
    return event
