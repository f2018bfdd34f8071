"""The record store (pure): multi-value, seq replacement, expiry, caps, sampling."""

from __future__ import annotations

import random

from p2pswarm.dht.records import AnnounceRecord, RecordKind, create_record, create_unannounce
from p2pswarm.dht.storage import PutResult, RecordStore
from p2pswarm.keys import KeyPair, topic

NOW = 1_800_000_000.0
TOPIC = topic("storage")


def record(
    key_pair: KeyPair, seq: int = 1, t: bytes = TOPIC, expiry: float = NOW + 1200
) -> AnnounceRecord:
    return create_record(key_pair, t, 1000, seq=seq, expiry=expiry)


def test_many_records_per_topic_one_per_key() -> None:
    store = RecordStore()
    keys = [KeyPair.generate() for _ in range(5)]
    for key_pair in keys:
        assert store.put(record(key_pair), "127.0.0.1", NOW) is PutResult.STORED
    sample = store.sample(RecordKind.TOPIC, TOPIC, NOW)
    assert {s.record.public_key for s in sample} == {k.public_key for k in keys}
    assert len(store) == 5 and store.topic_count == 1


def test_higher_seq_replaces_lower_is_stale() -> None:
    store = RecordStore()
    key_pair = KeyPair.generate()
    assert store.put(record(key_pair, seq=2), "127.0.0.1", NOW) is PutResult.STORED
    assert store.put(record(key_pair, seq=1), "127.0.0.1", NOW) is PutResult.STALE
    assert store.put(record(key_pair, seq=3), "127.0.0.2", NOW) is PutResult.REPLACED
    stored = store.get(RecordKind.TOPIC, TOPIC, key_pair.public_key, NOW)
    assert stored is not None and stored.record.seq == 3 and stored.host == "127.0.0.2"
    # The same record again (a retransmit) is fine; a different one with the same seq is not.
    assert store.put(stored.record, "127.0.0.2", NOW) is PutResult.REPLACED
    assert store.put(record(key_pair, seq=3, expiry=NOW + 5), "127.0.0.2", NOW) is PutResult.STALE
    assert len(store) == 1


def test_records_expire_after_ttl_or_their_own_expiry() -> None:
    store = RecordStore(ttl=1200)
    long_lived, short_lived = KeyPair.generate(), KeyPair.generate()
    store.put(record(long_lived, expiry=NOW + 10_000), "127.0.0.1", NOW)
    store.put(record(short_lived, expiry=NOW + 60), "127.0.0.1", NOW)
    assert len(store.sample(RecordKind.TOPIC, TOPIC, NOW + 59)) == 2
    assert len(store.sample(RecordKind.TOPIC, TOPIC, NOW + 61)) == 1
    assert store.get(RecordKind.TOPIC, TOPIC, long_lived.public_key, NOW + 1199) is not None
    assert store.get(RecordKind.TOPIC, TOPIC, long_lived.public_key, NOW + 1200) is None
    assert len(store) == 0


def test_expired_records_are_refused() -> None:
    store = RecordStore()
    assert store.put(record(KeyPair.generate(), expiry=NOW), "127.0.0.1", NOW) is PutResult.EXPIRED
    assert len(store) == 0


def test_expire_sweeps_everything_dead() -> None:
    store = RecordStore(ttl=100)
    for i in range(10):
        store.put(record(KeyPair.generate(), t=topic(str(i))), "127.0.0.1", NOW + i)
    assert store.expire(NOW + 104.5) == 5
    assert len(store) == 5 and store.topic_count == 5


def test_per_topic_cap_evicts_the_least_recently_announced() -> None:
    store = RecordStore(max_per_topic=3)
    keys = [KeyPair.generate() for _ in range(4)]
    for key_pair in keys[:3]:
        store.put(record(key_pair), "127.0.0.1", NOW)
    store.put(record(keys[0], seq=2), "127.0.0.1", NOW)  # re-announced: now the newest
    store.put(record(keys[3]), "127.0.0.1", NOW)
    kept = {s.record.public_key for s in store.sample(RecordKind.TOPIC, TOPIC, NOW)}
    assert kept == {keys[0].public_key, keys[2].public_key, keys[3].public_key}


def test_total_cap_bounds_memory_under_a_flood() -> None:
    store = RecordStore(max_per_topic=10, max_total=50)
    for i in range(300):
        store.put(record(KeyPair.generate(), t=topic(str(i % 40))), "127.0.0.1", NOW)
        assert len(store) <= 50
    assert len(store) == 50
    assert store.topic_count <= 40


def test_sample_is_random_and_bounded() -> None:
    store = RecordStore(rng=random.Random(1))
    for _ in range(30):
        store.put(record(KeyPair.generate()), "127.0.0.1", NOW)
    first = store.sample(RecordKind.TOPIC, TOPIC, NOW)
    second = store.sample(RecordKind.TOPIC, TOPIC, NOW)
    assert len(first) == len(second) == 20
    assert {s.record.public_key for s in first} != {s.record.public_key for s in second}
    assert store.sample(RecordKind.TOPIC, topic("empty"), NOW) == []


def test_unannounce_removes_and_blocks_replays() -> None:
    store = RecordStore()
    key_pair = KeyPair.generate()
    old = record(key_pair, seq=5)
    store.put(old, "127.0.0.1", NOW)
    assert store.remove(create_unannounce(key_pair, TOPIC, seq=6), NOW)
    assert len(store) == 0
    assert store.put(old, "127.0.0.1", NOW) is PutResult.STALE  # a replay stays removed
    assert store.put(record(key_pair, seq=7), "127.0.0.1", NOW) is PutResult.STORED


def test_an_older_unannounce_does_not_remove_a_newer_record() -> None:
    store = RecordStore()
    key_pair = KeyPair.generate()
    store.put(record(key_pair, seq=9), "127.0.0.1", NOW)
    assert not store.remove(create_unannounce(key_pair, TOPIC, seq=8), NOW)
    assert len(store) == 1
