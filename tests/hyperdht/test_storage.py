"""The two-generation caches keep JS's ages and sizes, on an injected clock."""

from __future__ import annotations

import random

from p2pswarm.hyperdht.storage import RECORD_MAX_AGE, GenerationClock, MaxCache, RecordCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lives_between_two_thirds_and_four_thirds_of_its_age() -> None:
    clock = Clock()
    cache: MaxCache[str, int] = MaxCache(100, 30.0, clock)
    cache.set("a", 1)
    clock.now += 19.9  # first tick at 20 s
    assert cache.get("a") == 1
    cache.set("b", 2)
    clock.now += 0.2  # tick: a and b become old; reading b moves it back
    assert cache.get("b") == 2
    clock.now += 20.0  # second tick: a (never read) is gone; b survives one more generation
    assert "a" not in cache
    assert cache.get("b") == 2
    clock.now += 60.0
    assert len(cache) == 0


def test_a_generation_over_max_size_collects_at_once_and_skips_the_next_tick() -> None:
    clock = Clock()
    cache: MaxCache[int, int] = MaxCache(3, 30.0, clock)
    for i in range(3):
        cache.set(i, i)
    # the third set filled the new generation: it became old, still readable
    assert len(cache) == 3
    cache.set(9, 9)
    clock.now += 20.0  # the tick is skipped: a collection ran since the last one
    assert cache.get(0) == 0
    clock.now += 20.0
    assert 1 not in cache and 2 not in cache
    assert 9 in cache and cache.get(0) == 0


def test_byte_budget_bounds_memory() -> None:
    clock = Clock()
    cache: MaxCache[int, bytes] = MaxCache(1000, 30.0, clock, max_bytes=1000, weigh=len)
    for i in range(100):
        cache.set(i, bytes(100))
    assert sum(len(v) for v in cache._latest.values()) < 1000
    assert len(cache) <= 20


def test_retained_entries_never_age() -> None:
    clock = Clock()
    cache: MaxCache[str, int] = MaxCache(10, 30.0, clock)
    cache.retain("mine", 1)
    cache.set("mine", 2)  # a retained key is not replaced by set (xache)
    clock.now += 1000
    assert cache.get("mine") == 1
    assert cache.delete("mine") and "mine" not in cache


def test_a_long_sleep_replays_at_most_three_ticks() -> None:
    clock = Clock()
    ticks = GenerationClock(30.0, clock)
    clock.now += 1e9
    assert ticks.due() == 3
    assert ticks.due() == 0
    clock.now += 20.0
    assert ticks.due() == 1


def test_record_cache_per_topic_limit_and_expiry() -> None:
    clock = Clock()
    records: RecordCache[bytes] = RecordCache(65536, RECORD_MAX_AGE, clock, rng=random.Random(1))
    topic = b"t" * 32
    for i in range(30):
        records.add(topic, bytes([i]) * 32, b"record%d" % i)
    got = records.get(topic, 20)
    assert len(got) == 20 and len(set(got)) == 20
    assert sorted(records.get(topic, 100)) == sorted(b"record%d" % i for i in range(30))
    assert records.get(b"other" * 6 + b"xx", 20) == []
    clock.now += 800.0  # 2/3 of 20 min: stale, still served
    assert len(records.get(topic, 100)) == 30
    records.add(topic, bytes([0]) * 32, b"again")  # back to fresh, new bytes
    clock.now += 800.0
    assert records.get(topic, 100) == [b"again"]
    clock.now += 1600.0
    assert len(records) == 0


def test_record_cache_size_bound_and_remove() -> None:
    clock = Clock()
    records: RecordCache[int] = RecordCache(4, RECORD_MAX_AGE, clock)
    for i in range(5):
        records.add(i, b"k", b"r")
    # the fifth add made the fresh generation too big: everything went stale at once
    assert len(records) == 5
    records.add(9, b"k", b"r")
    records.add(10, b"k", b"r")
    records.remove(0, b"k")
    records.remove(9, b"k")
    assert records.get(0, 20) == [] and records.get(9, 20) == []
    assert len(records) == 5
    records.remove(0, b"absent")
