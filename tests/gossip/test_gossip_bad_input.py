"""Hostile gossip: replays (inside and outside the window), forgeries, garbage."""

from __future__ import annotations

import anyio
import pytest

from p2pswarm import PeerInfo, Swarm, topic
from p2pswarm.gossip import Gossip, GossipMessage
from p2pswarm.mux import RAW, Channel, Mux, SwarmMux
from p2pswarm.protocol import gossip as wire
from p2pswarm.testing import FakeClock

from .helpers import partial_mesh, wait_for

pytestmark = pytest.mark.anyio
ROOM = topic("hostile gossip")


class Hostile:
    """A peer that speaks the gossip channel by hand: records what it gets, sends anything."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.channel: Channel | None = None
        self.event = anyio.Event()

    def changed(self) -> anyio.Event:
        return self.event

    def _poke(self) -> None:
        self.event.set()
        self.event = anyio.Event()

    def setup(self, mux: Mux, peer: PeerInfo) -> None:
        channel = mux.create_channel(
            wire.PROTOCOL, ROOM, messages=[(RAW, self._on_raw)], on_open=self._on_open
        )
        assert channel is not None
        channel.open()

    def _on_open(self, handshake: object, channel: Channel) -> None:
        self.channel = channel
        self._poke()

    def _on_raw(self, data: bytes, channel: Channel) -> None:
        self.received.append(data)
        self._poke()


async def test_replayed_forged_and_garbage_gossip() -> None:
    clock = FakeClock(1_800_000_000.0)
    hostile = Hostile()
    gossips: dict[int, Gossip] = {}
    delivered: list[GossipMessage] = []
    changed = anyio.Event()

    def on_message(message: GossipMessage) -> None:
        nonlocal changed
        delivered.append(message)
        changed.set()
        changed = anyio.Event()

    def setup(i: int, swarm: Swarm) -> None:
        if i == 0:
            gossips[0] = Gossip(swarm, ROOM, clock=clock)
            gossips[0].on_message(on_message)
        elif i == 1:
            gossips[1] = Gossip(swarm, ROOM, clock=clock)
        else:
            SwarmMux.of(swarm).on_mux(hostile.setup)

    # 0 is the victim, 1 an honest peer, 2 the hostile one; 1 and 2 only know 0.
    async with partial_mesh(3, [(0, 1), (0, 2)], setup=setup) as swarms:
        victim, honest = gossips[0], gossips[1]
        await victim.wait_neighbours(2, within=30)
        await honest.wait_neighbours(1, within=30)  # each side sees the open on its own
        await wait_for(lambda: hostile.channel is not None, hostile.changed)
        await honest.broadcast(b"real news")
        await wait_for(lambda: len(hostile.received) == 1, hostile.changed)
        assert len(delivered) == 1
        captured = hostile.received[0]
        assert hostile.channel is not None
        send = hostile.channel.messages[0]

        # A replay inside the window is a duplicate: dropped, the connection kept.
        await send.send(captured)
        await wait_for(lambda: victim.stats.duplicates >= 1, lambda: _poll())
        # Long after, the cache forgot it, but the seq is outside the window: stale.
        clock.advance(3600)
        await send.send(captured)
        await wait_for(lambda: victim.stats.stale >= 1, lambda: _poll())
        assert len(delivered) == 1

        # A forgery (someone else's message, payload changed) drops the forger's connection.
        envelope = wire.decode(captured)
        forged = wire.GossipEnvelope(
            envelope.origin,
            int(clock() * 1_000_000),
            3,
            b"fake news",
            envelope.signature,
        )
        hostile_key = swarms[2].key_pair.public_key
        await send.send(wire.encode(forged))
        await wait_for(lambda: hostile_key not in victim.neighbours, lambda: _poll())
        assert victim.stats.invalid == 1 and len(delivered) == 1
        assert swarms[0].peers[hostile_key].banned  # and not redialled
        assert swarms[1].key_pair.public_key in victim.neighbours  # others unharmed

        # The honest peer still gets through.
        await honest.broadcast(b"more real news")
        await wait_for(lambda: len(delivered) == 2, lambda: changed)
        assert delivered[1].payload == b"more real news"


async def test_garbage_drops_only_the_sender() -> None:
    hostile = Hostile()
    gossips: dict[int, Gossip] = {}

    def setup(i: int, swarm: Swarm) -> None:
        if i == 2:
            SwarmMux.of(swarm).on_mux(hostile.setup)
        else:
            gossips[i] = Gossip(swarm, ROOM)

    async with partial_mesh(3, [(0, 1), (0, 2)], setup=setup) as swarms:
        victim = gossips[0]
        await victim.wait_neighbours(2, within=30)
        await wait_for(lambda: hostile.channel is not None, hostile.changed)
        assert hostile.channel is not None
        await hostile.channel.messages[0].send(b"\xff" * 40)
        key = swarms[2].key_pair.public_key
        await wait_for(lambda: key not in victim.neighbours, lambda: _poll())
        assert victim.stats.invalid == 1 and swarms[0].peers[key].banned
        assert victim.neighbours == [swarms[1].key_pair.public_key]


def _poll() -> anyio.Event:
    """Re-check soon: for counters that have no event of their own (a checkpoint, no sleep)."""
    event = anyio.Event()
    event.set()
    return event
