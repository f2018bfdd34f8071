"""The order in which the swarm dials peers: a shuffled priority queue (pure).

Higher priority first; within one priority, random order, so that a thousand swarms
discovering the same peers do not all dial them in the same order (upstream's
``shuffled-priority-queue``). Push, pop, remove and membership are O(1).

:class:`DialQueue` holds two such queues: peers kept with ``join_peer`` (explicit) and
peers found by discovery. Explicit peers are dialled first and are not held back by
``max_peers``: the application asked for them by name.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

from .peer_info import PeerInfo, Priority

__all__ = ("DialQueue", "ShuffledPriorityQueue")

T = TypeVar("T", bound=Hashable)

_LEVELS = len(Priority)


class ShuffledPriorityQueue(Generic[T]):
    """Items with an integer priority in ``0..4``; :meth:`pop` takes a random item of the
    highest non-empty priority. An item is in the queue at most once."""

    __slots__ = ("_index", "_levels", "_rng")

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._levels: list[list[T]] = [[] for _ in range(_LEVELS)]
        self._index: dict[T, tuple[int, int]] = {}

    def push(self, item: T, priority: int) -> bool:
        """Add ``item``; False (unchanged) when it is already queued."""
        if item in self._index:
            return False
        level = min(max(int(priority), 0), _LEVELS - 1)
        bucket = self._levels[level]
        self._index[item] = (level, len(bucket))
        bucket.append(item)
        return True

    def _take(self, level: int, position: int) -> T:
        bucket = self._levels[level]
        item = bucket[position]
        last = bucket.pop()
        if position < len(bucket):
            bucket[position] = last
            self._index[last] = (level, position)
        del self._index[item]
        return item

    def pop(self) -> T | None:
        """Remove and return a random item of the highest priority, or None when empty."""
        for level in range(_LEVELS - 1, -1, -1):
            bucket = self._levels[level]
            if bucket:
                return self._take(level, self._rng.randrange(len(bucket)))
        return None

    def remove(self, item: T) -> bool:
        """Remove ``item``; False when it was not queued."""
        where = self._index.get(item)
        if where is None:
            return False
        self._take(*where)
        return True

    def clear(self) -> list[T]:
        """Empty the queue; returns what it held."""
        items = list(self._index)
        self._index.clear()
        for bucket in self._levels:
            bucket.clear()
        return items

    def __contains__(self, item: object) -> bool:
        return item in self._index

    def __len__(self) -> int:
        return len(self._index)

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._index))


class DialQueue:
    """Peers waiting to be dialled, explicit ones in their own lane.

    Keeps :attr:`PeerInfo.queued` in step with membership, so the swarm's garbage
    collection can rely on it.
    """

    __slots__ = ("_discovered", "_explicit")

    def __init__(self, rng: random.Random | None = None) -> None:
        rnd = rng or random.Random()
        self._explicit: ShuffledPriorityQueue[PeerInfo] = ShuffledPriorityQueue(rnd)
        self._discovered: ShuffledPriorityQueue[PeerInfo] = ShuffledPriorityQueue(rnd)

    def push(self, peer: PeerInfo) -> bool:
        """Queue ``peer`` at its current priority; False when already queued."""
        if peer in self:
            return False
        lane = self._explicit if peer.explicit else self._discovered
        lane.push(peer, peer.priority)
        peer.queued = True
        return True

    def remove(self, peer: PeerInfo) -> bool:
        """Take ``peer`` out of the queue; False when it was not queued."""
        removed = self._explicit.remove(peer) or self._discovered.remove(peer)
        if removed:
            peer.queued = False
        return removed

    def pop(self, *, within_max_peers: bool) -> PeerInfo | None:
        """The next peer to dial: explicit peers first, discovered ones only when
        ``within_max_peers``. None when there is nothing dialable."""
        peer = self._explicit.pop()
        if peer is None and within_max_peers:
            peer = self._discovered.pop()
        if peer is not None:
            peer.queued = False
        return peer

    def clear(self) -> list[PeerInfo]:
        """Empty both lanes; returns the peers that were queued."""
        peers = self._explicit.clear() + self._discovered.clear()
        for peer in peers:
            peer.queued = False
        return peers

    def __contains__(self, peer: object) -> bool:
        return peer in self._explicit or peer in self._discovered

    def __len__(self) -> int:
        return len(self._explicit) + len(self._discovered)

    def __iter__(self) -> Iterator[PeerInfo]:
        yield from self._explicit
        yield from self._discovered
