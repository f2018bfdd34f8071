"""flush() bookkeeping: waiters snapshot what is outstanding (pure)."""

from __future__ import annotations

from p2pswarm.swarm._flush import FlushTracker

A, B, C = b"a" * 32, b"b" * 32, b"c" * 32


def test_nothing_outstanding_needs_no_waiter() -> None:
    assert FlushTracker().register([]) is None


def test_waiter_completes_when_its_snapshot_is_settled() -> None:
    tracker = FlushTracker()
    first = tracker.register([A, B])
    assert tracker.settle(A) == []
    second = tracker.register([B, C])  # registered later: also waits for C
    assert tracker.settle(B) == [first]
    assert tracker.settle(C) == [second]
    assert len(tracker) == 0


def test_peers_found_later_do_not_delay_an_earlier_flush() -> None:
    tracker = FlushTracker()
    token = tracker.register([A])
    assert tracker.settle(C) == []  # C was not outstanding when flush() was called
    assert tracker.settle(A) == [token]


def test_settling_twice_or_unknown_keys_is_harmless() -> None:
    tracker = FlushTracker()
    token = tracker.register([A, B])
    tracker.settle(A)
    tracker.settle(A)
    assert tracker.settle(b"z" * 32) == []
    assert tracker.settle(B) == [token]


def test_settle_all_and_cancel() -> None:
    tracker = FlushTracker()
    t1 = tracker.register([A])
    t2 = tracker.register([B])
    assert t1 is not None
    tracker.cancel(t1)
    assert tracker.settle_all() == [t2]
    assert tracker.settle(A) == []
