"""PeerPool: the swarm's whole connection policy, driven by hand with a fake clock.

No sockets, no tasks: each test feeds events (found, dial ended, opened, closed, admitted,
time passing) and checks the decisions (what to dial, when to retry, what is forgotten,
which of two connections survives, when a flush completes).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from p2pswarm.peer_record import PeerAddress, PeerRecord
from p2pswarm.swarm._connection_set import Slot
from p2pswarm.swarm._policy import Limits, worth_dialling, worth_keeping
from p2pswarm.swarm._pool import PeerPool
from p2pswarm.swarm._retry import Backoffs
from p2pswarm.swarm.peer_info import MIN_CONNECTION_TIME, PeerInfo

LOCAL = b"\x80" * 32
SMALL = b"\x10" * 32  # smaller than LOCAL: its dial loses to ours
LARGE = b"\xf0" * 32  # larger than LOCAL: its dial beats ours
TOPIC = b"t" * 32
OTHER = b"o" * 32
BACKOFFS = Backoffs(1.0, 2.0, 3.0, 4.0)


@dataclass
class FakeConnection:
    bytes_read: int = 0
    bytes_written: int = 0


class Harness:
    def __init__(self, limits: Limits | None = None) -> None:
        self.modes: dict[bytes, bool] = {TOPIC: True}
        self.bans: list[tuple[PeerInfo, Exception]] = []
        self.flushed: list[tuple[list[int], bool]] = []
        self.pool: PeerPool[FakeConnection] = PeerPool(
            LOCAL,
            limits or Limits(),
            BACKOFFS,
            0.0,
            topic_mode=self.modes.get,
            on_ban=lambda peer, error: self.bans.append((peer, error)),
            on_flushed=lambda tokens, ok: self.flushed.append((tokens, ok)) if tokens else None,
            rng=random.Random(0),
        )
        self.now = 1000.0

    def record(self, key: bytes) -> PeerRecord:
        return PeerRecord(key, (PeerAddress("127.0.0.1", 4000 + key[0]),), TOPIC)

    def connect(self, key: bytes) -> tuple[Slot[FakeConnection], PeerInfo]:
        """Discover ``key``, dial it, and open the connection."""
        assert self.pool.found(self.record(key), TOPIC)
        ((slot, peer),) = self.pool.next_dials()
        assert self.pool.dial_ended(slot, peer, ok=True, now=self.now)
        self.pool.opened(slot, FakeConnection(), peer, self.now)
        return slot, peer

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.pool.retries_due(self.now)


def key(n: int) -> bytes:
    return bytes([n]) * 32


def test_found_peer_is_dialled_once_and_counted() -> None:
    h = Harness()
    assert h.pool.found(h.record(SMALL), TOPIC)
    ((slot, peer),) = h.pool.next_dials()
    assert slot.is_initiator and peer.public_key == SMALL
    assert h.pool.connecting == 1 and h.pool.stats.client_attempted == 1
    assert not h.pool.found(h.record(SMALL), OTHER)  # has a slot: not handed again
    assert peer.topics == [TOPIC, OTHER]
    assert h.pool.next_dials() == []


def test_our_own_record_is_ignored() -> None:
    h = Harness()
    assert not h.pool.found(h.record(LOCAL), TOPIC)
    assert h.pool.peers == {}


def test_failed_dial_retries_through_the_tiers_then_gives_up_and_forgets() -> None:
    h = Harness()
    h.pool.found(h.record(SMALL), TOPIC)
    delays = []
    for _ in range(5):
        dials = h.pool.next_dials()
        if not dials:
            break
        ((slot, peer),) = dials
        assert not h.pool.dial_ended(slot, peer, ok=False, now=h.now)
        deadline = h.pool.retry.next_deadline()
        if deadline is None:
            break
        delays.append(round(deadline - h.now, 6))
        h.advance(deadline - h.now)
    # Unproven peer: M, L, L (each released 0.66x-1.32x later), then given up.
    assert len(delays) == 3
    assert 0.66 * 2.0 <= delays[0] <= 1.32 * 2.0
    assert all(0.66 * 3.0 - 1e-9 <= d <= 1.32 * 3.0 + 1e-9 for d in delays[1:])
    assert h.pool.peers == {} and h.pool.connecting == 0 and len(h.pool.queue) == 0


def test_closed_proven_connection_is_redialled_fast_then_dropped() -> None:
    h = Harness()
    slot, peer = h.connect(SMALL)
    opened = 1
    while True:
        assert h.pool.closed(slot, peer, h.now)
        assert not h.pool.closed(slot, peer, h.now)  # idempotent
        deadline = h.pool.retry.next_deadline()
        if deadline is None:
            break
        h.advance(deadline - h.now)
        ((slot, peer),) = h.pool.next_dials()
        assert h.pool.dial_ended(slot, peer, ok=True, now=h.now)
        h.pool.opened(slot, FakeConnection(), peer, h.now)
        opened += 1
    assert opened == 4  # S, M, L after closes 1-3; the 4th close gives up
    assert SMALL not in h.pool.peers
    assert h.pool.stats.client_opened == h.pool.stats.client_closed == 4


def test_long_connection_restarts_the_budget() -> None:
    h = Harness()
    slot, peer = h.connect(SMALL)
    peer.attempts = 3
    h.now += MIN_CONNECTION_TIME
    h.pool.closed(slot, peer, h.now)
    assert peer.attempts == 1 and peer.waiting


def test_explicit_peer_is_retried_forever_and_bypasses_max_peers() -> None:
    h = Harness(Limits(max_peers=1))
    h.connect(LARGE)  # max_peers reached
    h.pool.found(h.record(key(0x20)), TOPIC)
    assert h.pool.next_dials() == []  # discovered peer held back
    h.pool.join_peer(SMALL)
    ((slot, peer),) = h.pool.next_dials()
    assert peer.public_key == SMALL and peer.explicit
    for _ in range(8):
        assert not h.pool.dial_ended(slot, peer, ok=False, now=h.now)
        assert peer.record is None  # found again by key next time
        deadline = h.pool.retry.next_deadline()
        assert deadline is not None
        h.advance(deadline - h.now)
        ((slot, peer),) = h.pool.next_dials()
    assert peer.attempts == 8 and SMALL in h.pool.peers


def test_leave_peer_stops_retries_and_forgets() -> None:
    h = Harness()
    h.pool.join_peer(SMALL)
    ((slot, peer),) = h.pool.next_dials()
    h.pool.dial_ended(slot, peer, ok=False, now=h.now)
    assert peer.waiting
    h.pool.leave_peer(SMALL)
    assert not peer.waiting and h.pool.peers == {} and h.pool.explicit_peers == set()


def test_join_self_is_a_noop() -> None:
    h = Harness()
    h.pool.join_peer(LOCAL)
    assert h.pool.peers == {} and h.pool.next_dials() == []


def test_max_parallel_and_max_client_connections() -> None:
    h = Harness(Limits(max_parallel=2, max_client=3))
    for n in range(0x20, 0x26):
        h.pool.found(h.record(key(n)), TOPIC)
    first = h.pool.next_dials()
    assert len(first) == 2
    for slot, peer in first:
        h.pool.dial_ended(slot, peer, ok=True, now=h.now)
        h.pool.opened(slot, FakeConnection(), peer, h.now)
    assert len(h.pool.next_dials()) == 1  # the third and last client slot
    assert h.pool.next_dials() == [] and h.pool.saturated()


def test_dedup_admission_larger_key_wins_and_outdated_loses() -> None:
    h = Harness()
    # We are dialling SMALL; SMALL's dial arrives: ours (the larger key) is kept.
    h.pool.found(h.record(SMALL), TOPIC)
    ((ours, _),) = h.pool.next_dials()
    slot, existing, probe = h.pool.admit(SMALL, [TOPIC])
    assert slot is None and existing is None and not probe
    # We are dialling LARGE; LARGE's dial arrives: it wins, our dial is superseded.
    h.pool.found(h.record(LARGE), TOPIC)
    ((dial, peer),) = h.pool.next_dials()
    slot, existing, _ = h.pool.admit(LARGE, [TOPIC])
    assert slot is not None and existing is dial and dial.superseded
    assert not h.pool.dial_ended(dial, peer, ok=True, now=h.now)  # ours never surfaces
    assert h.pool.slots.get(LARGE) is slot
    del ours


def test_open_idle_connection_is_probed_and_kept_but_used_one_is_replaced() -> None:
    h = Harness()
    slot, _ = h.connect(SMALL)
    new, existing, probe = h.pool.admit(SMALL, [])
    assert new is None and probe  # keep ours, send a keep-alive down it
    slot.connection = FakeConnection(bytes_read=5, bytes_written=7)
    new, existing, probe = h.pool.admit(SMALL, [])
    assert new is not None and existing is slot and not probe
    assert slot.superseded


def test_admission_refuses_banned_closed_and_over_the_server_cap() -> None:
    h = Harness(Limits(max_server=1))
    slot, _, _ = h.pool.admit(key(0x21), [TOPIC, b"x" * 32])
    assert slot is not None
    assert h.pool.peers[key(0x21)].topics == [TOPIC]  # only topics we joined
    assert h.pool.admit(key(0x22), [])[0] is None  # server cap
    h.pool.ban(key(0x23), RuntimeError("firewalled"))
    assert h.pool.admit(key(0x23), [])[0] is None
    h.pool.accepting = False
    assert h.pool.admit(key(0x24), [])[0] is None
    assert h.pool.admit(LOCAL, [])[0] is None


def test_ban_reports_once_and_is_kept() -> None:
    h = Harness()
    h.pool.found(h.record(SMALL), TOPIC)
    h.pool.ban(SMALL, RuntimeError("Peer is firewalled"))
    h.pool.ban(SMALL, RuntimeError("again"))
    ((peer, error),) = h.bans
    assert str(error) == "Peer is firewalled" and peer.banned and not peer.queued
    assert h.pool.stats.banned_peers == 1 and h.pool.next_dials() == []
    peer.ban(False)
    assert SMALL not in h.pool.peers  # unbanned and unreferenced: forgotten


def test_server_side_peer_is_forgotten_when_its_connection_closes() -> None:
    h = Harness()
    slot, _, _ = h.pool.admit(SMALL, [TOPIC])
    assert slot is not None
    peer = h.pool.peers[SMALL]
    h.pool.opened(slot, FakeConnection(), peer, h.now)
    assert peer.server and h.pool.stats.server_opened == 1
    h.pool.closed(slot, peer, h.now)
    assert h.pool.peers == {}  # no record: nothing to redial, nothing kept


def test_failed_handshake_releases_the_slot() -> None:
    h = Harness()
    slot, _, _ = h.pool.admit(SMALL, [])
    assert slot is not None
    h.pool.accept_failed(slot, h.now)
    assert SMALL not in h.pool.slots and h.pool.peers == {}


def test_left_topic_unschedules_and_picks_only_connections_it_justified() -> None:
    h = Harness()
    h.modes[OTHER] = True
    only_slot, _ = h.connect(key(0x21))
    shared_slot, shared = h.connect(key(0x22))
    shared._add_topic(OTHER)
    h.pool.found(h.record(key(0x23)), TOPIC)  # queued, not yet dialled
    del h.modes[TOPIC]
    to_close = h.pool.left_topic(TOPIC, close=True)
    assert to_close == [only_slot]
    assert key(0x23) not in h.pool.peers and len(h.pool.queue) == 0
    assert h.pool.left_topic(OTHER, close=False) == []
    assert shared_slot in list(h.pool.slots)


def test_flush_waits_for_queued_and_pending_then_completes() -> None:
    h = Harness(Limits(max_parallel=1))
    for n in (0x21, 0x22):
        h.pool.found(h.record(key(n)), TOPIC)
    ((slot, peer),) = h.pool.next_dials()
    token = h.pool.register_flush()
    assert token is not None
    h.pool.dial_ended(slot, peer, ok=False, now=h.now)
    assert h.flushed == []
    ((slot, peer),) = h.pool.next_dials()
    h.pool.dial_ended(slot, peer, ok=True, now=h.now)
    h.pool.opened(slot, FakeConnection(), peer, h.now)
    assert h.flushed == [([token], True)]


def test_flush_is_immediate_when_saturated_and_idle() -> None:
    h = Harness(Limits(max_peers=1))
    h.connect(SMALL)
    h.pool.found(h.record(key(0x21)), TOPIC)
    assert h.pool.next_dials() == []
    assert h.pool.register_flush() is None


def test_reset_forgets_queue_and_retries() -> None:
    h = Harness(Limits(max_peers=1))
    slot, peer = h.connect(SMALL)
    h.pool.found(h.record(key(0x21)), TOPIC)
    assert h.pool.next_dials() == []  # saturated: stays queued
    h.pool.closed(slot, peer, h.now)
    assert peer.waiting and len(h.pool.queue) == 1
    h.pool.reset()
    assert len(h.pool.queue) == 0 and len(h.pool.retry) == 0 and h.pool.peers == {}


def test_rediscovery_revives_a_given_up_peer() -> None:
    h = Harness()
    h.pool.found(h.record(SMALL), TOPIC)
    peer = h.pool.peers[SMALL]
    peer.attempts = 3  # LOW: not prioritized
    ((slot, peer),) = h.pool.next_dials()
    h.pool.dial_ended(slot, peer, ok=False, now=h.now)
    assert SMALL not in h.pool.peers  # 4 attempts: given up
    assert h.pool.found(h.record(SMALL), TOPIC)
    assert h.pool.peers[SMALL].attempts == 0 and len(h.pool.next_dials()) == 1


@pytest.mark.parametrize("explicit", [True, False])
def test_worth_dialling_and_keeping(explicit: bool) -> None:
    peer = PeerInfo(SMALL)
    peer.explicit = explicit
    assert worth_dialling(peer, {TOPIC}) == explicit  # no record: found by key only
    peer.record = PeerRecord(SMALL, ())
    peer._add_topic(TOPIC)
    assert worth_dialling(peer, {TOPIC})
    assert worth_dialling(peer, set()) == explicit
    assert worth_keeping(peer, {TOPIC})
    assert worth_keeping(peer, set()) == explicit


def test_limits_validation() -> None:
    assert Limits.checked(5, 2, None, 0) == Limits(5, 2, None, 0)
    with pytest.raises(ValueError, match="max_peers"):
        Limits.checked(0)
    with pytest.raises(TypeError, match="max_parallel"):
        Limits.checked(1, 2.5)
    with pytest.raises(TypeError, match="max_client_connections"):
        Limits.checked(1, 1, True)
    with pytest.raises(ValueError, match="max_server_connections"):
        Limits.checked(1, 1, None, -1)


def _refused_dial(h: Harness, key: bytes) -> PeerInfo:
    """Dial ``key`` (queued or retry due) and have it refused."""
    ((slot, peer),) = h.pool.next_dials()
    assert not h.pool.dial_ended(slot, peer, ok=False, now=h.now, refused=True)
    return peer


def test_a_refusal_under_the_dedup_rule_costs_no_attempt() -> None:
    h = Harness()
    h.pool.found(h.record(LARGE), TOPIC)
    peer = _refused_dial(h, LARGE)
    # LARGE keeps its own dial and refused ours: not a failure, but redialled in case.
    assert peer.attempts == 0 and peer.waiting and LARGE in h.pool.peers
    deadline = h.pool.retry.next_deadline()
    assert deadline is not None
    h.advance(deadline - h.now)
    # Refused again: not the dedup rule at work any more (a ban, a full server): counted.
    peer = _refused_dial(h, LARGE)
    assert peer.attempts == 1 and peer.waiting


def test_a_refusal_by_a_smaller_key_counts() -> None:
    # A smaller key expects our dial to win: its refusal is not the dedup rule.
    h = Harness()
    h.pool.found(h.record(SMALL), TOPIC)
    assert _refused_dial(h, SMALL).attempts == 1


def test_a_free_refusal_is_free_again_after_a_connection() -> None:
    h = Harness()
    h.pool.found(h.record(LARGE), TOPIC)
    _refused_dial(h, LARGE)
    deadline = h.pool.retry.next_deadline()
    assert deadline is not None
    h.advance(deadline - h.now)
    ((slot, peer),) = h.pool.next_dials()
    assert h.pool.dial_ended(slot, peer, ok=True, now=h.now)
    h.pool.opened(slot, FakeConnection(), peer, h.now)
    h.pool.closed(slot, peer, h.now)
    assert peer.attempts == 1
    deadline = h.pool.retry.next_deadline()
    assert deadline is not None
    h.advance(deadline - h.now)
    assert _refused_dial(h, LARGE).attempts == 1  # the connection ended the streak
