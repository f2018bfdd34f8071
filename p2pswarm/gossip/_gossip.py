"""Gossip over a swarm: one ``p2pswarm/gossip`` channel per connection for a topic.

The I/O around :mod:`.router` (the decisions) and :mod:`p2pswarm.protocol.gossip` (the
wire). Every connection of the swarm gets a channel for the topic (through
:class:`~p2pswarm.mux.SwarmMux`); it opens where the peer gossips on the topic too, and
those peers are the neighbours. A received message is handled in the connection's Mux
reader: checked (decode, window, duplicate, signature), delivered, and copied into each
other neighbour's outbox. An outbox is a bounded queue drained by its own task, so a slow
neighbour loses copies (counted in ``stats.dropped``) instead of slowing the rest; the
mesh's other paths still carry the message.

A malformed or forged message drops the connection that sent it (the Mux closes a
connection whose handler raises) and bans the peer; duplicates and stale messages are
dropped silently.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..keys import check_topic
from ..mux import RAW, Channel, Mux, SwarmMux
from ..protocol import gossip as wire
from ..swarm._events import CallbackList
from ..swarm.peer_info import PeerInfo
from .router import (
    DEFAULT_HOPS,
    MAX_SEEN,
    WINDOW,
    Origin,
    SeenCache,
    Verdict,
    forward_targets,
    next_hops,
)

if TYPE_CHECKING:
    from ..swarm.swarm import Swarm

__all__ = ("OUTBOX_SIZE", "Gossip", "GossipMessage", "GossipStats")

logger = logging.getLogger("p2pswarm.gossip")

#: Copies waiting for one neighbour at most; past it new copies for it are dropped.
OUTBOX_SIZE: Final = 256


@dataclass(frozen=True, slots=True)
class GossipMessage:
    """A message delivered by :class:`Gossip`.

    ``origin`` wrote it (and signed it); ``sender`` is the neighbour it came from;
    ``hops`` the forwards it had left on arrival; ``seq`` the origin's clock in
    microseconds; ``id`` names it on every path.
    """

    id: bytes
    origin: bytes
    seq: int
    payload: bytes
    hops: int
    sender: bytes


@dataclass(slots=True)
class GossipStats:
    """Counters: ``sent`` (our broadcasts), ``delivered``, ``duplicates``, ``stale``,
    ``forwarded`` (copies queued to neighbours), ``dropped`` (copies lost to a full
    outbox or queue), ``invalid`` (malformed or forged: their connection was dropped)."""

    sent: int = 0
    delivered: int = 0
    duplicates: int = 0
    stale: int = 0
    forwarded: int = 0
    dropped: int = 0
    invalid: int = 0


OnGossip = Callable[[GossipMessage], Any]


class _Neighbour:
    __slots__ = ("channel", "key", "outbox")

    def __init__(self, key: bytes, channel: Channel, outbox: MemoryObjectSendStream[bytes]):
        self.key = key
        self.channel = channel
        self.outbox = outbox


class Gossip:
    """Broadcast to every peer gossiping on ``topic``, across a partial mesh.

    Make it before joining the topic (channels are set up as connections open; later ones
    are set up at once too). ``on_message`` callbacks (sync or async; a decorator too) get
    each :class:`GossipMessage` once; without any, messages wait in a bounded queue read
    with :meth:`receive` or ``async for``. ``hops`` is the forwards a broadcast is given,
    ``window`` the clock difference accepted (see :mod:`.router`), ``clock`` the wall clock
    (seconds since the epoch).
    """

    def __init__(
        self,
        swarm: Swarm,
        topic: bytes,
        *,
        hops: int = DEFAULT_HOPS,
        window: float = WINDOW,
        max_seen: int = MAX_SEEN,
        queue_size: int = OUTBOX_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.topic = check_topic(topic)
        if not 1 <= hops <= wire.MAX_HOPS:
            raise ValueError(f"hops must be 1..{wire.MAX_HOPS}")
        self.swarm = swarm
        self.hops = hops
        self.stats = GossipStats()
        self._clock = clock
        self._seen = SeenCache(window=window, max_entries=max_seen)
        self._origin = Origin()
        self._queue_size = queue_size
        self._neighbours: dict[bytes, _Neighbour] = {}
        self._callbacks: CallbackList[OnGossip] = CallbackList("gossip")
        self._inbox_send, self._inbox = anyio.create_memory_object_stream[GossipMessage](queue_size)
        self._changed = anyio.Event()
        self._closed = False
        self._hub = SwarmMux.of(swarm)
        self._hub.on_mux(self._setup)

    # -- public ------------------------------------------------------------------------------

    @property
    def neighbours(self) -> list[bytes]:
        """Public keys of the peers whose gossip channel for the topic is open."""
        return list(self._neighbours)

    def on_message(self, callback: OnGossip) -> OnGossip:
        """Register ``callback(message)`` (sync or async); usable as a decorator."""
        return self._callbacks.add(callback)

    async def broadcast(self, payload: bytes) -> bytes:
        """Send ``payload`` (at most 64 KiB) to every peer of the topic; returns its id.

        Returns once the copies are queued for the neighbours; with none yet, the message
        reaches nobody (gossip keeps no history for later joiners).
        """
        if self._closed:
            raise RuntimeError("this Gossip is closed")
        payload = bytes(payload)
        key_pair = self.swarm.key_pair
        seq = self._origin.next_seq(self._clock())
        envelope = wire.sign(
            key_pair.sign, key_pair.public_key, self.topic, seq, self.hops, payload
        )
        self._seen.add(envelope.id, seq)
        self.stats.sent += 1
        self._forward(envelope, wire.encode(envelope), sender=None)
        await anyio.lowlevel.checkpoint()
        return envelope.id

    async def receive(self) -> GossipMessage:
        """The next message (only while no ``on_message`` callback is registered)."""
        return await self._inbox.receive()

    def __aiter__(self) -> AsyncIterator[GossipMessage]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[GossipMessage]:
        async for message in self._inbox:
            yield message

    async def wait_neighbours(self, count: int, *, within: float = math.inf) -> None:
        """Wait until at least ``count`` neighbours have an open channel."""
        with anyio.fail_after(within):
            while len(self._neighbours) < count:
                self._changed = anyio.Event()
                await self._changed.wait()

    def close(self) -> None:
        """Stop gossiping on the topic: close every channel and forget the setup."""
        if self._closed:
            return
        self._closed = True
        self._hub.remove_setup(self._setup)
        for neighbour in list(self._neighbours.values()):
            neighbour.channel.close()
        self._inbox_send.close()

    def __repr__(self) -> str:
        return (
            f"<Gossip {self.topic.hex()[:16]}… neighbours={len(self._neighbours)} "
            f"seen={len(self._seen)}>"
        )

    # -- channels ------------------------------------------------------------------------------

    def _setup(self, mux: Mux, peer: PeerInfo) -> None:
        if self._closed:
            return
        self._open_channel(mux)
        mux.pair(wire.PROTOCOL, lambda _id: self._open_channel(mux), id=self.topic)

    def _open_channel(self, mux: Mux) -> None:
        channel = mux.create_channel(
            wire.PROTOCOL,
            self.topic,
            user_data=mux.connection.remote_public_key,
            messages=[(RAW, self._on_raw)],
            on_open=self._on_open,
            on_close=self._on_close,
        )
        if channel is not None:
            channel.open()

    def _on_open(self, handshake: object, channel: Channel) -> None:
        key = _remote_key(channel)
        send, receive = anyio.create_memory_object_stream[bytes](self._queue_size)
        old = self._neighbours.get(key)
        if old is not None:
            old.outbox.close()
        self._neighbours[key] = _Neighbour(key, channel, send)
        channel.mux.start_soon(self._pump, channel, receive)
        self._changed.set()

    def _on_close(self, remote: bool, channel: Channel) -> None:
        key = _remote_key(channel)
        neighbour = self._neighbours.get(key)
        if neighbour is not None and neighbour.channel is channel:
            del self._neighbours[key]
            neighbour.outbox.close()
            self._changed.set()

    async def _pump(self, channel: Channel, outbox: MemoryObjectReceiveStream[bytes]) -> None:
        message = channel.messages[0]
        async with outbox:
            async for data in outbox:
                if channel.closed:
                    return
                try:
                    await message.send(data)
                except Exception:  # the channel or connection went away: its copies go too
                    logger.debug("gossip copies to %s… lost", _remote_key(channel).hex()[:16])
                    return

    # -- messages ------------------------------------------------------------------------------

    def _on_raw(self, data: bytes, channel: Channel) -> None:
        sender = _remote_key(channel)
        try:
            envelope = wire.decode(data)
        except Exception:
            self._misbehaved(sender)
            raise
        verdict = self._seen.check(envelope.id, envelope.seq, self._clock())
        if verdict is Verdict.DUPLICATE:
            self.stats.duplicates += 1
            return
        if verdict is Verdict.STALE:
            self.stats.stale += 1
            return
        try:
            wire.verify(envelope, self.topic)
        except Exception:
            self._misbehaved(sender)
            raise
        self._seen.add(envelope.id, envelope.seq)
        self._deliver(
            GossipMessage(
                envelope.id, envelope.origin, envelope.seq, envelope.payload, envelope.hops, sender
            )
        )
        hops = next_hops(envelope.hops)
        if hops:
            forwarded = envelope.with_hops(hops)
            self._forward(forwarded, wire.encode(forwarded), sender=sender)

    def _misbehaved(self, sender: bytes) -> None:
        """A malformed or forged message: the Mux drops the connection when the error
        propagates; the peer is banned too, so it is not redialled (a peer book keeps the
        ban for a day)."""
        self.stats.invalid += 1
        peer = self.swarm.peers.get(sender)
        if peer is not None:
            peer.ban()

    def _deliver(self, message: GossipMessage) -> None:
        self.stats.delivered += 1
        if self._callbacks:
            self._callbacks.emit(self.swarm._spawn, message)
            return
        try:
            self._inbox_send.send_nowait(message)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.stats.dropped += 1

    def _forward(self, envelope: wire.GossipEnvelope, data: bytes, *, sender: bytes | None) -> None:
        for key in forward_targets(self._neighbours, sender=sender, origin=envelope.origin):
            try:
                self._neighbours[key].outbox.send_nowait(data)
            except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
                self.stats.dropped += 1
            else:
                self.stats.forwarded += 1


def _remote_key(channel: Channel) -> bytes:
    """The public key of the peer at the other end of one of our gossip channels."""
    key = channel.user_data
    assert isinstance(key, bytes)
    return key
