"""The swarm's connection policy as one pure state machine (httpcore's pool, for peers).

:class:`PeerPool` holds every known peer, the dial queue, the retry timer, the connection
slots and the flush waiters, and moves peers between them as events come in: found by a
lookup, dial started, dial ended, connection opened or closed, handshake admitted, retry
due, topic left, suspended. It does no I/O and reads no clock: the swarm passes ``now``,
performs the dials and closes the pool asks for, and reports back. That keeps every rule
testable with a fake clock and no sockets (``tests/swarm/test_pool.py``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from typing import Generic, Protocol, TypeVar

from ..errors import PeerBannedError
from ..peer_record import PeerRecord
from ._connection_set import ConnectionSet, Slot
from ._flush import FlushTracker
from ._policy import Admission, Limits, SwarmStats, admit_incoming, worth_dialling, worth_keeping
from ._queue import DialQueue
from ._retry import Backoffs, RetryTimer
from .peer_info import PeerInfo

__all__ = ("PeerPool", "TrafficCounters")


class TrafficCounters(Protocol):
    """What the dedup rule reads from an open connection."""

    @property
    def bytes_read(self) -> int: ...

    @property
    def bytes_written(self) -> int: ...


C = TypeVar("C", bound=TrafficCounters)


class PeerPool(Generic[C]):
    """Peers, slots, queue and retries of one swarm; see the module docstring.

    ``topic_mode(topic)`` tells the pool whether a topic is joined as a client (True),
    joined in server mode only (False) or not joined (None). ``on_ban(peer, error)`` and
    ``on_flushed(tokens, result)`` report events the swarm turns into callbacks.
    """

    def __init__(
        self,
        local_key: bytes,
        limits: Limits,
        backoffs: Backoffs,
        jitter: float,
        *,
        topic_mode: Callable[[bytes], bool | None],
        on_ban: Callable[[PeerInfo, Exception], None] = lambda peer, error: None,
        on_flushed: Callable[[list[int], bool], None] = lambda tokens, result: None,
        rng: random.Random | None = None,
    ) -> None:
        rnd = rng or random.Random()
        self.local_key = local_key
        self.limits = limits
        self.peers: dict[bytes, PeerInfo] = {}
        self.explicit_peers: set[PeerInfo] = set()
        self.slots: ConnectionSet[C] = ConnectionSet()
        self.queue = DialQueue(rnd)
        self.retry = RetryTimer(backoffs, jitter, rng=rnd)
        self.flushes = FlushTracker()
        self.stats = SwarmStats()
        self.connecting = 0
        #: False while the swarm is suspended or closed: no dials, no admissions, no retries.
        self.accepting = True
        self._topic_mode = topic_mode
        self._on_ban = on_ban
        self._on_flushed = on_flushed
        self._ban_reasons: dict[bytes, Exception] = {}

    # -- peers ------------------------------------------------------------------------------

    def peer(self, key: bytes, *, client: bool) -> PeerInfo:
        """The PeerInfo for ``key``, created (as dialled or dialling) if unknown."""
        peer = self.peers.get(key)
        if peer is None:
            peer = PeerInfo(key, client=client, on_ban=self._banned)
            self.peers[key] = peer
        return peer

    def forget_maybe(self, peer: PeerInfo) -> None:
        """Drop ``peer`` once nothing refers to it (no leak on either side)."""
        has_slot = peer.public_key in self.slots
        if peer._collectable(has_connection=has_slot) and self.peers.get(peer.public_key) is peer:
            del self.peers[peer.public_key]

    def justified(self, peer: PeerInfo) -> bool:
        """Worth (re)dialling: explicit, or found under a topic we still look up."""
        return worth_dialling(peer, _ClientTopics(self._topic_mode))

    def is_banned(self, key: bytes) -> bool:
        peer = self.peers.get(key)
        return peer is not None and peer.banned

    def ban(self, key: bytes, reason: Exception) -> None:
        """Ban ``key`` (the firewall said no): kept forever, reported once."""
        peer = self.peer(key, client=False)
        if not peer.banned:
            self._ban_reasons[key] = reason
            peer.ban(True)

    def _banned(self, peer: PeerInfo, banned: bool) -> None:
        if not banned:
            if peer.explicit and self.accepting and peer.public_key not in self.slots:
                self.queue.push(peer)  # kept by join_peer: dial it again now
            self.forget_maybe(peer)
            return
        self.stats.banned_peers += 1
        self.unschedule(peer)
        reason = self._ban_reasons.pop(peer.public_key, None) or PeerBannedError("Peer is banned")
        self._on_ban(peer, reason)

    # -- discovery and explicit peers -------------------------------------------------------

    def found(self, record: PeerRecord, topic: bytes) -> bool:
        """A lookup found ``record`` under ``topic``. True when it is a peer to dial now.

        A rediscovered peer that was given up on (or that we only knew as a dialler) has its
        failure history reset: discovery just saw it alive.
        """
        key = record.public_key
        if key == self.local_key:
            return False
        peer = self.peer(key, client=True)
        peer.record = record
        peer._add_topic(topic)
        if peer.banned or key in self.slots:
            return False
        if not peer.prioritized or peer.server:
            peer._reset()
            if peer.waiting:
                self.retry.discard(peer)
                peer.waiting = False
        if not self.accepting:  # suspended: resume() rediscovers everything
            self.forget_maybe(peer)
            return False
        if not peer.waiting:
            self.queue.push(peer)
        return True

    def join_peer(self, key: bytes) -> None:
        """Keep ``key`` connected: queue it in the explicit lane; retried forever."""
        if key == self.local_key:
            return
        peer = self.peer(key, client=True)
        peer.explicit = True
        self.explicit_peers.add(peer)
        if peer.queued:
            self.queue.remove(peer)  # move it to the explicit lane
            self.queue.push(peer)
        elif key not in self.slots and not peer.waiting and not peer.banned:
            peer._reset()
            if self.accepting:
                self.queue.push(peer)

    def leave_peer(self, key: bytes) -> None:
        """Stop keeping ``key``; an open connection stays, nothing redials it for this."""
        peer = self.peers.get(key)
        if peer is None or not peer.explicit:
            return
        peer.explicit = False
        self.explicit_peers.discard(peer)
        if not self.justified(peer):
            self.unschedule(peer)
        self.forget_maybe(peer)

    def left_topic(self, topic: bytes, *, close: bool) -> list[Slot[C]]:
        """``topic`` was left: no (re)dial for it any more. With ``close``, returns the
        slots that only that topic justified, for the swarm to close."""
        to_close: list[Slot[C]] = []
        joined = _JoinedTopics(self._topic_mode)
        for peer in list(self.peers.values()):
            if topic not in peer.topics:
                continue
            if not self.justified(peer):
                self.unschedule(peer)
            slot = self.slots.get(peer.public_key)
            if close and slot is not None and not worth_keeping(peer, joined):
                to_close.append(slot)
            self.forget_maybe(peer)
        return to_close

    # -- dialling ---------------------------------------------------------------------------

    def saturated(self) -> bool:
        return self.limits.saturated(
            total_slots=len(self.slots), client_slots=self.slots.count(is_initiator=True)
        )

    def next_dials(self) -> list[tuple[Slot[C], PeerInfo]]:
        """Pop as many peers as the limits allow; each gets a pending slot to dial."""
        dials: list[tuple[Slot[C], PeerInfo]] = []
        while self.accepting and self.limits.may_dial(
            connecting=self.connecting, client_slots=self.slots.count(is_initiator=True)
        ):
            within = self.limits.within_max_peers(len(self.slots))
            peer = self.queue.pop(within_max_peers=within)
            if peer is None:
                break
            if peer.banned or peer.public_key in self.slots:
                self.settle(peer.public_key)
                self.forget_maybe(peer)
                continue
            dials.append((self.slots.claim(peer.public_key, is_initiator=True), peer))
            self.connecting += 1
            self.stats.client_attempted += 1
        if self.connecting == 0 and self.saturated():
            # Nothing can be attempted until something closes: flush() must not hang.
            self._on_flushed(self.flushes.settle_all(), True)
        return dials

    def dial_ended(
        self, slot: Slot[C], peer: PeerInfo, *, ok: bool, now: float, refused: bool = False
    ) -> bool:
        """A dial finished (``ok``: a connection came back; ``refused``: the peer read our
        handshake and closed). True when the swarm should hand that connection out: its
        slot is still the peer's and we are accepting."""
        self.connecting -= 1
        if ok and not slot.superseded and self.accepting:
            return True
        self.slots.release(slot)
        if not ok and not slot.superseded and peer.public_key not in self.slots:
            if not self._dedup_refusal(peer, refused):
                peer._disconnected(now)
            if peer.explicit:
                peer.record = None  # find it again by key: it may have moved
            self.schedule_retry(peer, now)
        self.settle(peer.public_key)
        self.forget_maybe(peer)
        return False

    def _dedup_refusal(self, peer: PeerInfo, refused: bool) -> bool:
        """Is this refusal the dedup rule at work, not a failure to count? The peer with the
        larger key keeps its own dial, so it refuses ours while it holds one (or a stale
        connection it is probing); its connection is coming, or our retry will find the way
        clear. The wire does not say why a peer refused, so only one refusal in a row is
        free: a peer that refuses for good (a ban, a full server) still uses up attempts."""
        if not refused or peer.public_key < self.local_key or peer._refused:
            return False
        peer._refused = True
        return True

    # -- accepting --------------------------------------------------------------------------

    def admit(
        self, key: bytes, topics: Collection[bytes]
    ) -> tuple[Slot[C] | None, Slot[C] | None, bool]:
        """An incoming handshake from ``key`` (the firewall already said yes).

        Returns (new slot or None when refused, the existing slot to retire or None,
        whether to probe the existing connection with a keep-alive).
        """
        existing = self.slots.get(key)
        conn = existing.connection if existing is not None else None
        facts = None
        if existing is not None:
            facts = (
                conn is not None,
                conn.bytes_read if conn else 0,
                conn.bytes_written if conn else 0,
            )
        verdict = admit_incoming(
            local_key=self.local_key,
            remote_key=key,
            accepting=self.accepting,
            banned=self.is_banned(key),
            existing=facts,
            server_slots=self.slots.count(is_initiator=False),
            limits=self.limits,
        )
        if verdict not in (Admission.ACCEPT, Admission.REPLACE):
            return None, None, verdict is Admission.REFUSE_AND_PROBE
        peer = self.peer(key, client=False)
        for topic in topics:
            if self._topic_mode(topic) is not None:
                peer._add_topic(topic)
        slot = self.slots.claim(key, is_initiator=False)
        return slot, existing, False

    def accept_failed(self, slot: Slot[C], now: float) -> None:
        """The handshake admitted into ``slot`` did not complete."""
        self.slots.release(slot)
        self.settle(slot.remote_key)
        peer = self.peers.get(slot.remote_key)
        if peer is not None and slot.remote_key not in self.slots:
            self.schedule_retry(peer, now)  # it may have replaced a working connection
            self.forget_maybe(peer)

    # -- open connections -------------------------------------------------------------------

    def opened(self, slot: Slot[C], conn: C, peer: PeerInfo, now: float) -> None:
        """``conn`` passed dedup and goes to the application now."""
        slot.connection = conn
        peer._connected(now, client=slot.is_initiator)
        if slot.is_initiator:
            self.stats.client_opened += 1
        else:
            self.stats.server_opened += 1
        self.settle(peer.public_key)

    def closed(self, slot: Slot[C], peer: PeerInfo, now: float) -> bool:
        """The connection in ``slot`` closed; True the first time (idempotent)."""
        if slot.retired:
            return False
        slot.retired = True
        self.slots.release(slot)
        if slot.connection is not None:
            if slot.is_initiator:
                self.stats.client_closed += 1
            else:
                self.stats.server_closed += 1
        peer._disconnected(now)
        if peer.public_key not in self.slots:
            self.schedule_retry(peer, now)
        self.forget_maybe(peer)
        return True

    # -- retries ----------------------------------------------------------------------------

    def schedule_retry(self, peer: PeerInfo, now: float) -> bool:
        """Put ``peer`` in its back-off tier if policy says it is worth redialling."""
        if not self.accepting or peer.waiting or peer.queued or not self.justified(peer):
            return False
        if self.retry.add(peer, now):
            peer.waiting = True
            return True
        return False

    def unschedule(self, peer: PeerInfo) -> None:
        """Take ``peer`` out of the queue and the retry timer."""
        if peer.queued:
            self.queue.remove(peer)
        if peer.waiting:
            self.retry.discard(peer)
            peer.waiting = False
        self.settle(peer.public_key)

    def retries_due(self, now: float) -> None:
        """Move every peer whose back-off expired back into the dial queue."""
        for peer in self.retry.due(now):
            peer.waiting = False
            if peer.banned or peer.public_key in self.slots or not self.justified(peer):
                self.forget_maybe(peer)
                continue
            self.queue.push(peer)

    def reset(self) -> None:
        """Forget every queued dial and pending retry (suspend, close)."""
        for peer in self.retry.clear() + self.queue.clear():
            peer.waiting = peer.queued = False
            self.forget_maybe(peer)

    # -- flush ------------------------------------------------------------------------------

    def register_flush(self) -> int | None:
        """A flush waiter for every peer queued or mid-handshake now; None: nothing to wait
        for (also when saturated with no dial in flight)."""
        if self.connecting == 0 and self.saturated():
            return None
        outstanding = [p.public_key for p in self.queue]
        outstanding += [s.remote_key for s in self.slots if s.connection is None]
        return self.flushes.register(outstanding)

    def settle(self, key: bytes) -> None:
        """``key`` was attempted (or dropped): complete the flushes waiting only for it."""
        self._on_flushed(self.flushes.settle(key), True)


class _ClientTopics:
    """``topic in _ClientTopics(mode)``: joined in client mode."""

    __slots__ = ("_mode",)

    def __init__(self, mode: Callable[[bytes], bool | None]) -> None:
        self._mode = mode

    def __contains__(self, topic: object) -> bool:
        return isinstance(topic, bytes) and self._mode(topic) is True


class _JoinedTopics(_ClientTopics):
    """``topic in _JoinedTopics(mode)``: joined in any mode."""

    def __contains__(self, topic: object) -> bool:
        return isinstance(topic, bytes) and self._mode(topic) is not None
