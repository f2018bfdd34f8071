"""Gossip's pure decisions: window, duplicates, floor under a flood, seqs, targets."""

from __future__ import annotations

import pytest

from p2pswarm.gossip.router import (
    Origin,
    SeenCache,
    Verdict,
    forward_targets,
    next_hops,
)
from p2pswarm.protocol.gossip import message_id

NOW = 1_800_000_000.0
US = 1_000_000
A, B, C = (bytes([i]) * 32 for i in (1, 2, 3))


def seq_at(t: float) -> int:
    return int(t * US)


def test_new_then_duplicate() -> None:
    cache = SeenCache()
    mid = message_id(A, seq_at(NOW))
    assert cache.check(mid, seq_at(NOW), NOW) is Verdict.NEW
    assert cache.check(mid, seq_at(NOW), NOW) is Verdict.NEW  # not remembered until add
    cache.add(mid, seq_at(NOW))
    assert cache.check(mid, seq_at(NOW), NOW + 1) is Verdict.DUPLICATE


def test_replay_after_the_cache_forgot_is_stale() -> None:
    cache = SeenCache(window=120.0)
    seq = seq_at(NOW)
    cache.add(message_id(A, seq), seq)
    # Long after: the id fell out of the cache, but the seq is outside the window.
    assert cache.check(message_id(A, seq), seq, NOW + 121) is Verdict.STALE
    assert len(cache) == 0
    # Far-future seqs are refused too.
    future = seq_at(NOW + 500)
    assert cache.check(message_id(A, future), future, NOW) is Verdict.STALE


def test_a_flood_raises_the_floor_so_nothing_is_accepted_twice() -> None:
    cache = SeenCache(max_entries=10)
    seqs = [seq_at(NOW) + i for i in range(25)]
    for s in seqs:
        assert cache.check(message_id(A, s), s, NOW) is Verdict.NEW
        cache.add(message_id(A, s), s)
    assert len(cache) == 10
    assert cache.floor == seqs[14]
    for s in seqs:  # replaying all of them: none is new again
        assert cache.check(message_id(A, s), s, NOW) is not Verdict.NEW
    assert cache.check(message_id(B, seqs[20] + 1), seqs[20] + 1, NOW) is Verdict.NEW


def test_cache_is_time_bounded() -> None:
    cache = SeenCache(window=10.0)
    for i in range(100):
        s = seq_at(NOW) + i
        cache.add(message_id(A, s), s)
    assert len(cache) == 100
    cache.check(message_id(B, seq_at(NOW + 11)), seq_at(NOW + 11), NOW + 11)
    assert len(cache) == 0


def test_origin_seq_strictly_increases() -> None:
    origin = Origin()
    a = origin.next_seq(NOW)
    b = origin.next_seq(NOW)
    c = origin.next_seq(NOW - 5)  # clock stepped back
    assert a == seq_at(NOW) and b == a + 1 and c == b + 1
    assert origin.next_seq(NOW + 1) == seq_at(NOW + 1)


def test_hops_and_targets() -> None:
    assert next_hops(3) == 2 and next_hops(1) == 0
    assert forward_targets([A, B, C], sender=B, origin=C) == [A]
    assert forward_targets([A, B], sender=None, origin=C) == [A, B]


def test_bad_options() -> None:
    with pytest.raises(ValueError):
        SeenCache(window=0)
    with pytest.raises(ValueError):
        SeenCache(max_entries=0)
