"""The tried/new tables: placement, eclipse bounds, eviction, choosing whom to dial."""

from __future__ import annotations

import pytest

from p2pswarm.peerbook.addrman import (
    BUCKET_SIZE,
    NEW,
    NEW_BUCKETS_PER_SOURCE,
    PROTECT_TRIED,
    TRIED,
    TRIED_BUCKETS_PER_GROUP,
    AddrMan,
    KnownPeer,
    network_group,
)

NOW = 1_800_000_000.0
SECRET = b"s" * 32


def key(i: int) -> bytes:
    return i.to_bytes(4, "big") + bytes(28)


def test_network_groups() -> None:
    assert network_group("203.0.113.7") == network_group("203.0.200.1") == "4:203.0"
    assert network_group("203.1.113.7") != network_group("203.0.113.7")
    assert network_group("::ffff:203.0.113.7") == "4:203.0"
    assert network_group("2001:db8:1::1") == network_group("2001:db8:ffff::2")
    assert network_group("2001:db9::1") != network_group("2001:db8::1")
    assert network_group("Example.org") == "name:example.org"


def test_secret_is_checked() -> None:
    with pytest.raises(ValueError):
        AddrMan(b"short")


def test_add_then_good_moves_to_tried() -> None:
    book = AddrMan(SECRET)
    assert book.add(key(1), "198.51.100.1", 1000, now=NOW, topic=bytes(32)) == [key(1)]
    entry = book.get(key(1))
    assert entry is not None and entry.table == NEW and entry.topics == [bytes(32)]
    book.attempt(key(1), now=NOW + 1, ok=False)
    assert entry.failures == 1
    book.good(key(1), now=NOW + 2)
    entry = book.get(key(1))
    assert entry is not None and entry.table == TRIED
    assert entry.successes == 1 and entry.failures == 0 and entry.last_success == NOW + 2
    assert book.count(TRIED) == 1 and book.count(NEW) == 0


def test_unknown_peers_are_ignored_by_outcomes() -> None:
    book = AddrMan(SECRET)
    assert book.good(key(9), now=NOW) == []
    assert book.attempt(key(9), now=NOW, ok=False) == []
    assert book.forget(key(9)) == []


def test_one_source_group_fills_a_bounded_share_of_new() -> None:
    """An attacker in one /16 telling us about many peers in many networks: at most
    NEW_BUCKETS_PER_SOURCE buckets' worth of them are kept."""
    book = AddrMan(SECRET)
    for i in range(5000):
        book.add(key(i), f"10.{i % 250}.{i // 250}.1", 1000, now=NOW, source="198.51.7.7")
    assert book.count(NEW) <= NEW_BUCKETS_PER_SOURCE * BUCKET_SIZE
    # ... while honest peers who announce themselves from many networks still get in.
    before = book.count(NEW)
    for i in range(200):
        book.add(key(100_000 + i), f"{20 + i}.1.2.3", 1000, now=NOW)
    assert book.count(NEW) - before > 100


def test_one_address_group_fills_a_bounded_share_of_tried() -> None:
    book = AddrMan(SECRET)
    for i in range(3000):
        k = key(i)
        book.add(k, f"192.0.{i % 256}.{i // 256}", 1000, now=NOW, source=f"{i % 200 + 1}.9.9.9")
        book.good(k, now=NOW)
    assert book.count(TRIED) <= TRIED_BUCKETS_PER_GROUP * BUCKET_SIZE


def _colliding_pair(book: AddrMan, table: int) -> tuple[bytes, bytes]:
    """Two keys in one /16 whose slots collide in ``table``."""
    seen: dict[tuple[int, int], bytes] = {}
    for i in range(100_000):
        k = key(i)
        if table == TRIED:
            bucket = book.tried_bucket(k, "4:192.0")
        else:
            bucket = book.new_bucket("4:192.0", "4:192.0")
        slot = (bucket, book.position(table, bucket, k))
        if slot in seen:
            return seen[slot], k
        seen[slot] = k
    raise AssertionError("no collision found")


def test_a_healthy_new_entry_keeps_its_slot_a_terrible_one_is_replaced() -> None:
    book = AddrMan(SECRET)
    first, second = _colliding_pair(book, NEW)
    book.add(first, "192.0.0.1", 1, now=NOW)
    assert book.add(second, "192.0.0.2", 1, now=NOW) == []
    assert second not in book
    for _ in range(3):  # never connected, 3 failures: terrible (once a minute passed)
        book.attempt(first, now=NOW, ok=False)
    assert book.add(second, "192.0.0.2", 1, now=NOW + 61) == [second]
    assert first not in book and second in book


def test_tried_test_before_evict() -> None:
    book = AddrMan(SECRET)
    first, second = _colliding_pair(book, TRIED)
    for k, host in ((first, "192.0.0.1"), (second, "192.0.0.2")):
        book.add(k, host, 1, now=NOW, source=host.replace("192.0", "7.7"))
    book.good(first, now=NOW)
    book.good(second, now=NOW + 10)  # the occupant succeeded 10 s ago: it stays
    a, b = book.get(first), book.get(second)
    assert a is not None and b is not None and a.table == TRIED and b.table == NEW
    assert b.successes == 1
    book.good(second, now=NOW + PROTECT_TRIED + 1)  # now the occupant is stale: evicted to new
    a, b = book.get(first), book.get(second)
    assert b is not None and b.table == TRIED
    assert a is None or a.table == NEW


def test_candidates_prefer_recent_tried_spread_over_groups() -> None:
    book = AddrMan(SECRET)
    hosts = ["192.0.0.1", "192.0.0.2", "192.0.0.3", "198.51.0.1", "203.0.0.1"]
    for i, host in enumerate(hosts):
        book.add(key(i), host, 1, now=NOW, topic=b"t" * 32)
        book.good(key(i), now=NOW + i)
    book.add(key(10), "100.64.0.1", 1, now=NOW, topic=b"t" * 32)  # only new
    book.add(key(11), "100.65.0.1", 1, now=NOW)  # another topic
    picked = [e.public_key for e in book.candidates(now=NOW + 100, limit=10, topic=b"t" * 32)]
    # one per group first (most recent success first), then the rest, then new ones
    assert picked == [key(4), key(3), key(2), key(1), key(0), key(10)]
    assert len(book.candidates(now=NOW + 100, limit=2)) == 2
    assert key(4) not in [e.public_key for e in book.candidates(now=NOW, limit=9, exclude=[key(4)])]


def test_topics_are_bounded_most_recent_first() -> None:
    book = AddrMan(SECRET)
    for i in range(20):
        book.add(key(1), "192.0.0.1", 1, now=NOW, topic=bytes([i]) * 32)
    entry = book.get(key(1))
    assert entry is not None and len(entry.topics) == 8 and entry.topics[0] == bytes([19]) * 32


def test_restore_checks_placement() -> None:
    book = AddrMan(SECRET)
    book.add(key(1), "192.0.0.1", 1, now=NOW)
    good = book.get(key(1))
    assert good is not None
    fresh = AddrMan(SECRET)
    assert fresh.restore(KnownPeer(**{f: getattr(good, f) for f in KnownPeer.__slots__}))
    assert not fresh.restore(KnownPeer(key(2), "192.0.0.2", 1, "4:192.0", bucket=999))
    moved = KnownPeer(**{f: getattr(good, f) for f in KnownPeer.__slots__})
    moved.position = (moved.position + 1) % BUCKET_SIZE
    assert not AddrMan(SECRET).restore(moved)
