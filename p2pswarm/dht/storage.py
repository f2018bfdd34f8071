"""The records a DHT node stores for others: many per topic, bounded, expiring (pure).

One record per announcer per topic; a higher ``seq`` replaces a lower one, and a signed
unannounce removes it (a tombstone then stops a replay of the older record from bringing it
back). Records live at most ``ttl`` seconds (20 minutes, as HyperDHT's record cache), or
less if their own signed expiry is sooner. Memory is bounded under a flood: a topic holds
at most ``max_per_topic`` announcers and the node at most ``max_total`` records; past a cap
the least recently announced record makes room, so peers that re-announce on schedule keep
their place while a burst of one-shot keys ages out. Time is always an argument.
"""

from __future__ import annotations

import enum
import random
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from .records import AnnounceRecord, RecordKind, Unannounce

__all__ = ("DEFAULT_TTL", "PutResult", "RecordStore", "StoredRecord")

DEFAULT_TTL: Final = 20 * 60.0
DEFAULT_MAX_PER_TOPIC: Final = 128
DEFAULT_MAX_TOTAL: Final = 65536

_TopicKey = tuple[RecordKind, bytes]
_EntryKey = tuple[RecordKind, bytes, bytes]


class PutResult(enum.Enum):
    STORED = "stored"
    REPLACED = "replaced"
    STALE = "stale"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A verified record with the source IP the storing node observed for its announcer."""

    record: AnnounceRecord
    host: str
    expires_at: float


class RecordStore:
    """Multi-value, capped, expiring record storage keyed by (kind, topic, public key)."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        max_per_topic: int = DEFAULT_MAX_PER_TOPIC,
        max_total: int = DEFAULT_MAX_TOTAL,
        rng: random.Random | None = None,
    ) -> None:
        if max_per_topic < 1 or max_total < 1:
            raise ValueError("storage caps must be positive")
        self.ttl = ttl
        self.max_per_topic = max_per_topic
        self.max_total = max_total
        self._rng = rng or random.Random()
        self._topics: dict[_TopicKey, OrderedDict[bytes, StoredRecord]] = {}
        #: Every stored entry, least recently announced first (drives the global cap).
        self._order: OrderedDict[_EntryKey, None] = OrderedDict()
        #: Unannounced (entry -> (seq, until)), so a replayed older record stays removed.
        self._tombstones: OrderedDict[_EntryKey, tuple[int, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._order)

    @property
    def topic_count(self) -> int:
        return len(self._topics)

    def put(self, record: AnnounceRecord, host: str, now: float) -> PutResult:
        """Store a verified record for the announcer whose source IP was ``host``."""
        if record.expiry <= now:
            return PutResult.EXPIRED
        key: _EntryKey = (record.kind, record.topic, record.public_key)
        tombstone = self._tombstones.get(key)
        if tombstone is not None:
            if tombstone[1] > now and record.seq <= tombstone[0]:
                return PutResult.STALE
            del self._tombstones[key]
        topic_key: _TopicKey = (record.kind, record.topic)
        entries = self._topics.get(topic_key)
        if entries is None:
            entries = self._topics[topic_key] = OrderedDict()
        existing = entries.get(record.public_key)
        if (
            existing is not None
            and existing.expires_at > now
            and (
                record.seq < existing.record.seq
                or (record.seq == existing.record.seq and record.signed != existing.record.signed)
            )
        ):
            return PutResult.STALE
        stored = StoredRecord(record, host, min(record.expiry, now + self.ttl))
        if existing is not None:
            del entries[record.public_key]
            del self._order[key]
        else:
            if len(entries) >= self.max_per_topic:
                oldest = next(iter(entries))
                self._evict((record.kind, record.topic, oldest))
            while len(self._order) >= self.max_total:
                self._evict(next(iter(self._order)))
            # Eviction may have emptied and dropped this topic's map.
            entries = self._topics.setdefault(topic_key, entries)
        entries[record.public_key] = stored
        self._order[key] = None
        return PutResult.REPLACED if existing is not None else PutResult.STORED

    def _evict(self, key: _EntryKey) -> None:
        kind, topic, public_key = key
        self._order.pop(key, None)
        entries = self._topics.get((kind, topic))
        if entries is None:
            return
        entries.pop(public_key, None)
        if not entries:
            del self._topics[(kind, topic)]

    def remove(self, unannounce: Unannounce, now: float) -> bool:
        """Apply a verified unannounce; True when a record was removed."""
        key: _EntryKey = (unannounce.kind, unannounce.topic, unannounce.public_key)
        entries = self._topics.get((unannounce.kind, unannounce.topic))
        existing = entries.get(unannounce.public_key) if entries is not None else None
        if existing is not None and existing.record.seq > unannounce.seq:
            return False  # announced again after this unannounce was signed
        self._tombstones.pop(key, None)
        self._tombstones[key] = (unannounce.seq, now + self.ttl)
        while len(self._tombstones) > self.max_total:
            self._tombstones.popitem(last=False)
        if existing is None:
            return False
        self._evict(key)
        return True

    def get(
        self, kind: RecordKind, topic: bytes, public_key: bytes, now: float
    ) -> StoredRecord | None:
        entries = self._topics.get((kind, topic))
        stored = entries.get(public_key) if entries is not None else None
        if stored is None:
            return None
        if stored.expires_at <= now:
            self._evict((kind, topic, public_key))
            return None
        return stored

    def sample(
        self, kind: RecordKind, topic: bytes, now: float, limit: int = 20
    ) -> list[StoredRecord]:
        """Up to ``limit`` live records of a topic, a random sample when there are more."""
        entries = self._topics.get((kind, topic))
        if not entries:
            return []
        expired = [pk for pk, stored in entries.items() if stored.expires_at <= now]
        for public_key in expired:
            self._evict((kind, topic, public_key))
        live = list(entries.values())
        if len(live) <= limit:
            return live
        return self._rng.sample(live, limit)

    def expire(self, now: float) -> int:
        """Drop every expired record and tombstone; returns how many records went."""
        dead = [
            key for key in self._order if self._topics[(key[0], key[1])][key[2]].expires_at <= now
        ]
        for key in dead:
            self._evict(key)
        stale = [key for key, (_, until) in self._tombstones.items() if until <= now]
        for key in stale:
            del self._tombstones[key]
        return len(dead)
