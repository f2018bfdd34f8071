"""Back-off tiers, jitter and batching (pure, fake clock)."""

from __future__ import annotations

import random

import pytest

from p2pswarm.swarm._retry import Backoffs, BulkTimer, RetryTimer, Tier
from p2pswarm.swarm.peer_info import PeerInfo

BACKOFFS = Backoffs(1.0, 2.0, 3.0, 4.0)


def peer(
    n: int = 1, *, attempts: int = 0, proven: bool = False, explicit: bool = False
) -> PeerInfo:
    info = PeerInfo(n.to_bytes(32, "big"))
    info.attempts = attempts
    info.proven = proven
    info.explicit = explicit
    return info


# -- BulkTimer -------------------------------------------------------------------------------


def test_bulk_timer_releases_after_one_to_two_periods() -> None:
    timer: BulkTimer[str] = BulkTimer(1.0)
    assert timer.add("a", now=10.0) == pytest.approx(10.0 + 2 * 0.66)
    assert timer.due(10.0 + 1.3) == []
    assert timer.due(10.0 + 1.32) == ["a"]
    assert timer.next_deadline() is None


def test_bulk_timer_batches_items_added_in_one_period() -> None:
    timer: BulkTimer[str] = BulkTimer(1.0)
    timer.add("a", now=0.0)
    timer.add("b", now=0.5)  # same period as "a"
    timer.add("c", now=0.7)  # next period: a separate, later batch
    assert timer.next_deadline() == pytest.approx(1.32)
    assert timer.due(1.32) == ["a", "b"]
    assert timer.next_deadline() == pytest.approx(1.98)
    assert timer.due(5.0) == ["c"]


def test_bulk_timer_delay_is_between_066_and_132_of_its_time() -> None:
    rnd = random.Random(7)
    timer: BulkTimer[int] = BulkTimer(2.0)
    timer.add(-1, now=0.0)
    for i in range(200):
        now = rnd.uniform(0, 100)
        when = timer.add(i, now)
        assert 0.66 * 2.0 - 1e-9 <= when - now <= 1.32 * 2.0 + 1e-9


def test_bulk_timer_discard_and_clear() -> None:
    timer: BulkTimer[str] = BulkTimer(1.0)
    timer.add("a", 0.0)
    timer.add("b", 0.0)
    timer.discard("a")
    timer.discard("missing")
    assert len(timer) == 1
    timer.clear()
    assert len(timer) == 0 and timer.next_deadline() is None


def test_bulk_timer_rejects_non_positive_delay() -> None:
    with pytest.raises(ValueError):
        BulkTimer(0.0)


# -- tier selection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "proven", "explicit", "tier"),
    [
        (0, False, False, Tier.S),
        (1, True, False, Tier.S),
        (2, True, False, Tier.M),
        (3, True, False, Tier.L),
        (1, False, False, Tier.M),
        (2, False, False, Tier.L),
        (3, False, False, Tier.L),
        (4, True, False, None),
        (4, False, True, Tier.X),
        (40, True, True, Tier.X),
    ],
)
def test_select_tier(attempts: int, proven: bool, explicit: bool, tier: str | None) -> None:
    info = peer(attempts=attempts, proven=proven, explicit=explicit)
    assert RetryTimer.select_tier(info) == tier


def test_banned_and_non_reconnecting_peers_are_never_retried() -> None:
    timer = RetryTimer(BACKOFFS, jitter=0)
    banned = peer(1)
    banned.ban()
    quiet = peer(2, explicit=True)
    quiet.reconnect(False)
    assert not timer.add(banned, 0.0)
    assert not timer.add(quiet, 0.0)
    assert len(timer) == 0


def test_proven_peer_is_reinserted_fast() -> None:
    timer = RetryTimer(BACKOFFS, jitter=0)
    info = peer(attempts=1, proven=True)
    assert timer.add(info, now=0.0)
    assert timer.next_deadline() == pytest.approx(2 * 0.66 * BACKOFFS.s)
    assert timer.due(2 * 0.66 * BACKOFFS.s) == [info]


def test_unresponsive_peer_is_forgotten() -> None:
    timer = RetryTimer(BACKOFFS, jitter=0)
    assert not timer.add(peer(attempts=4), now=0.0)
    assert timer.next_deadline() is None


def test_jitter_adds_at_most_its_value_once_per_tier() -> None:
    timer = RetryTimer(BACKOFFS, jitter=0.5, rng=random.Random(1))
    delays = {name: t.delay for name, t in timer.timers.items()}
    for name, base in ((Tier.S, 1.0), (Tier.M, 2.0), (Tier.L, 3.0), (Tier.X, 4.0)):
        assert base <= delays[name] <= base + 0.5
    assert len({d - b for d, b in zip(delays.values(), (1.0, 2.0, 3.0, 4.0), strict=True)}) > 1


def test_retry_timer_discard_and_clear() -> None:
    timer = RetryTimer(BACKOFFS, jitter=0)
    a, b = peer(1), peer(2, attempts=2)
    timer.add(a, 0.0)
    timer.add(b, 0.0)
    timer.discard(a)
    assert timer.due(100.0) == [b]
    timer.add(a, 200.0)
    assert timer.clear() == [a]
    assert len(timer) == 0


def test_default_backoffs_match_hyperswarm_ranges() -> None:
    for seed in range(20):
        b = Backoffs.default(random.Random(seed))
        assert 1.0 <= b.s <= 1.5 and 5.0 <= b.m <= 6.0
        assert 15.0 <= b.l <= 17.0 and 600.0 <= b.x <= 720.0


def test_coerce_backoffs() -> None:
    assert Backoffs.coerce((0.01, 0.02, 0.03, 0.04)) == Backoffs(0.01, 0.02, 0.03, 0.04)
    assert Backoffs.coerce(BACKOFFS) is BACKOFFS
    assert isinstance(Backoffs.coerce(None), Backoffs)
    with pytest.raises(ValueError, match="4 numbers"):
        Backoffs.coerce((1.0, 2.0))
    with pytest.raises(ValueError, match="positive"):
        Backoffs.coerce((1.0, 2.0, 0.0, 4.0))
    with pytest.raises(TypeError):
        Backoffs.coerce((1.0, 2.0, "3", 4.0))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Backoffs.coerce(5.0)  # type: ignore[arg-type]


def test_jitter_validation() -> None:
    with pytest.raises(ValueError):
        RetryTimer(BACKOFFS, jitter=-1)
    with pytest.raises(TypeError):
        RetryTimer(BACKOFFS, jitter="0")  # type: ignore[arg-type]
