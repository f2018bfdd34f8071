"""The discovery refresh timer: interval plus jitter, and late-timer (sleep) detection."""

from __future__ import annotations

import math
import random

from p2pswarm.networks.discovery_backend import (
    FAILED_ROUND_RETRY,
    REFRESH_INTERVAL,
    REFRESH_JITTER,
)
from p2pswarm.swarm.discovery import DELAY_GRACE_PERIOD, RefreshSchedule


def test_constants_match_hyperswarm() -> None:
    assert REFRESH_INTERVAL == 600.0
    assert REFRESH_JITTER == 120.0
    assert DELAY_GRACE_PERIOD == 30.0


def test_next_round_is_interval_plus_jitter() -> None:
    schedule = RefreshSchedule(rng=random.Random(3))
    assert schedule.deadline == math.inf
    for now in (0.0, 1000.0, 5000.0):
        deadline = schedule.round_finished(now)
        assert now + 600.0 <= deadline <= now + 720.0


def test_timer_on_time_refreshes() -> None:
    schedule = RefreshSchedule(interval=10, jitter=0, grace=5)
    schedule.round_finished(0.0)
    assert schedule.timer_fired(10.0 + 4.9)
    assert schedule.deadline == math.inf


def test_late_timer_means_sleep_and_reschedules_after_jitter_only() -> None:
    schedule = RefreshSchedule(interval=10, jitter=2, grace=5, rng=random.Random(1))
    schedule.round_finished(0.0)
    woke = 10.0 + 3600.0  # the laptop slept for an hour
    assert not schedule.timer_fired(woke)
    assert woke <= schedule.deadline <= woke + 2
    # The rescheduled timer then fires on time and refreshes.
    assert schedule.timer_fired(schedule.deadline)


def test_cancel_disarms() -> None:
    schedule = RefreshSchedule()
    schedule.round_finished(0.0)
    schedule.cancel()
    assert schedule.deadline == math.inf


def test_failed_rounds_retry_soon_with_doubling_delays_capped_at_the_interval() -> None:
    schedule = RefreshSchedule(interval=600, jitter=0, rng=random.Random(2))
    now = 0.0
    delays = []
    for _ in range(12):
        deadline = schedule.round_finished(now, ok=False)
        delays.append(deadline - now)
        now = deadline
    for i, delay in enumerate(delays):
        base = min(FAILED_ROUND_RETRY * 2**i, 600)
        assert base <= delay <= base * 1.5
    assert delays[-1] >= 600
    # One success goes back to the normal interval, and the next failure starts over.
    assert schedule.round_finished(now, ok=True) == now + 600
    assert schedule.round_finished(now, ok=False) - now <= FAILED_ROUND_RETRY * 1.5
