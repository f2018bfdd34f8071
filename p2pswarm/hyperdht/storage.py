"""The caches a storing HyperDHT node keeps, with JavaScript's limits and ages.

JS HyperDHT stores in two small packages, ported here without timers: ``record-cache``
(topic records: per topic, a set of records keyed by public key) and ``xache`` (everything
else: routes, mutable and immutable values, bumps, refresh links). Both keep two
generations. Every ``ceil(2/3 * max_age)`` a collection drops the older generation and makes
the newer one old (skipped once if a size-triggered collection ran since), so an entry lives
between 2/3 and 4/3 of ``max_age``; a generation filling past ``max_size`` collects at once.
Reading an old ``xache`` entry moves it back to the new generation; ``record-cache`` reads do
not refresh.

Pure: the caller injects a monotonic ``clock`` (seconds). The timers JS runs become a check
at the start of every call, so a cache nobody touches costs nothing.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable
from typing import Final, Generic, TypeVar

__all__ = (
    "IMMUTABLE_MAX_AGE",
    "MAX_SIZE",
    "MUTABLE_MAX_AGE",
    "RECORD_MAX_AGE",
    "GenerationClock",
    "MaxCache",
    "RecordCache",
)

#: ``hyperdht/index.js defaultCacheOpts``: 65,536 entries for records, routes, bumps and
#: refreshes; half that for mutable and immutable values.
MAX_SIZE: Final = 65536
RECORD_MAX_AGE: Final = 20 * 60.0
MUTABLE_MAX_AGE: Final = 48 * 3600.0
IMMUTABLE_MAX_AGE: Final = 48 * 3600.0

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class GenerationClock:
    """The ``setInterval(_gcAuto, ceil(2/3 * maxAge))`` both JS caches run, as a pure check.

    :meth:`due` says how many collections the elapsed ticks would have run: a tick collects
    unless a size-triggered collection happened since the previous tick. Three ticks empty
    any two-generation cache, so at most three are replayed however long it slept.
    """

    __slots__ = ("_clock", "_collected", "_next", "_tick")

    def __init__(self, max_age: float, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._tick = math.ceil(2 / 3 * max_age * 1000) / 1000 if max_age > 0 else math.inf
        self._next = clock() + self._tick
        self._collected = False

    def note_collection(self) -> None:
        """A size-triggered collection ran: the next tick skips its own."""
        self._collected = True

    def due(self) -> int:
        now = self._clock()
        if now < self._next:
            return 0
        ticks = int((now - self._next) // self._tick) + 1
        self._next += ticks * self._tick
        runs = 0
        for _ in range(min(ticks, 3)):
            if not self._collected:
                runs += 1
            self._collected = False
        return runs


class MaxCache(Generic[K, V]):
    """``xache``: a two-generation map with a size bound, an age and a retained set.

    ``max_bytes`` (not in JS) also collects when the new generation's values weigh that
    much, so a flood of large values costs at most twice that: pass ``weigh`` with it.
    """

    def __init__(
        self,
        max_size: int,
        max_age: float,
        clock: Callable[[], float],
        *,
        max_bytes: int | None = None,
        weigh: Callable[[V], int] | None = None,
    ) -> None:
        self.max_size = max_size
        self.max_bytes = max_bytes
        self._weigh = weigh
        self._generations = GenerationClock(max_age, clock)
        self._latest: dict[K, V] = {}
        self._oldest: dict[K, V] = {}
        self._retained: dict[K, V] = {}
        self._latest_bytes = 0

    def __len__(self) -> int:
        self._expire()
        return len(self._latest) + len(self._oldest) + len(self._retained)

    def _expire(self) -> None:
        for _ in range(self._generations.due()):
            self._collect()

    def _collect(self) -> None:
        self._oldest = self._latest
        self._latest = {}
        self._latest_bytes = 0

    def _put_latest(self, key: K, value: V) -> None:
        if self._weigh is not None:
            previous = self._latest.get(key)
            if previous is not None:
                self._latest_bytes -= self._weigh(previous)
            self._latest_bytes += self._weigh(value)
        self._latest[key] = value

    def set(self, key: K, value: V) -> None:
        self._expire()
        if key in self._retained:
            return
        self._put_latest(key, value)
        self._oldest.pop(key, None)
        if len(self._latest) >= self.max_size or (
            self.max_bytes is not None and self._latest_bytes >= self.max_bytes
        ):
            self._collect()
            self._generations.note_collection()

    def retain(self, key: K, value: V) -> None:
        """Keep ``key`` until :meth:`delete`, whatever its age (a route we serve ourselves)."""
        self._expire()
        self._retained[key] = value
        if key in self._latest:
            self._drop_latest(key)
        else:
            self._oldest.pop(key, None)

    def _drop_latest(self, key: K) -> None:
        value = self._latest.pop(key)
        if self._weigh is not None:
            self._latest_bytes -= self._weigh(value)

    def delete(self, key: K) -> bool:
        self._expire()
        if key in self._latest:
            self._drop_latest(key)
            return True
        return self._oldest.pop(key, None) is not None or self._retained.pop(key, None) is not None

    def get(self, key: K) -> V | None:
        """The value, moving an old entry back into the new generation (as JS does)."""
        self._expire()
        if key in self._latest:
            return self._latest[key]
        if key in self._oldest:
            value = self._oldest.pop(key)
            self._put_latest(key, value)
            return value
        return self._retained.get(key)

    def __contains__(self, key: object) -> bool:
        self._expire()
        return key in self._latest or key in self._oldest or key in self._retained


class RecordCache(Generic[K]):
    """``record-cache``: per name (a topic), records keyed by public key, in two generations.

    ``max_size`` bounds the records of the new generation across all names. One deliberate
    difference: re-adding a record that is already fresh replaces its bytes (JS keeps the
    first copy until it goes stale), so a peer's new relay addresses take effect at once.
    """

    def __init__(
        self,
        max_size: int,
        max_age: float,
        clock: Callable[[], float],
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.max_size = max_size
        self._generations = GenerationClock(max_age, clock)
        self._rng = rng or random.Random()
        self._fresh: dict[K, dict[bytes, bytes]] = {}
        self._stale: dict[K, dict[bytes, bytes]] = {}
        self._fresh_size = 0
        self._stale_size = 0

    def __len__(self) -> int:
        self._expire()
        return self._fresh_size + self._stale_size

    def _expire(self) -> None:
        for _ in range(self._generations.due()):
            self._collect()

    def _collect(self) -> None:
        self._stale, self._stale_size = self._fresh, self._fresh_size
        self._fresh, self._fresh_size = {}, 0

    def add(self, name: K, key: bytes, record: bytes) -> None:
        self._expire()
        self._remove_stale(name, key)
        records = self._fresh.setdefault(name, {})
        added = key not in records
        records[key] = record
        if added:
            self._fresh_size += 1
            if self._fresh_size > self.max_size:
                self._collect()
                self._generations.note_collection()

    def _remove_stale(self, name: K, key: bytes) -> None:
        records = self._stale.get(name)
        if records is not None and records.pop(key, None) is not None:
            self._stale_size -= 1
            if not records:
                del self._stale[name]

    def remove(self, name: K, key: bytes) -> None:
        self._expire()
        records = self._fresh.get(name)
        if records is not None and records.pop(key, None) is not None:
            self._fresh_size -= 1
            if not records:
                del self._fresh[name]
        self._remove_stale(name, key)

    def get(self, name: K, limit: int) -> list[bytes]:
        """Up to ``limit`` records of ``name``, chosen at random from both generations."""
        self._expire()
        everything = [*self._fresh.get(name, {}).values(), *self._stale.get(name, {}).values()]
        if len(everything) <= limit:
            self._rng.shuffle(everything)
            return everything
        return self._rng.sample(everything, limit)
