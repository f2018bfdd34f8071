"""Gossip's decisions, pure: is a message new, whom to forward it to, what seq comes next.

A message is delivered once and forwarded once by every peer: to every neighbour but the
one it came from (and its origin), with one hop less, while hops remain. Duplicates are
suppressed by a seen-cache bounded both in time and in count, and made exact by the
message's ``seq``, which is its origin's clock (microseconds since the epoch):

* a message whose ``seq`` is more than :data:`WINDOW` seconds away from our clock is
  *stale* and dropped: a replay of an old message is refused however long ago it was seen;
* a message inside the window is accepted once: its id is remembered until its ``seq``
  leaves the window, so the cache never needs to hold more than a window's worth;
* when a flood fills the cache past ``max_entries`` inside the window, the entry with the
  oldest ``seq`` is dropped and a *floor* rises to it: nothing at or below the floor is
  accepted any more, so even then no id is ever accepted twice.

The cost is that peers' clocks must agree within :data:`WINDOW` (two minutes by default);
a peer with a clock further off cannot gossip until it fixes it. Times are arguments.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable
from typing import Final

__all__ = (
    "DEFAULT_HOPS",
    "MAX_SEEN",
    "WINDOW",
    "Origin",
    "SeenCache",
    "Verdict",
    "forward_targets",
    "next_hops",
)

#: Forwards a new message is given: enough for a mesh of a few hundred peers of degree 3+.
DEFAULT_HOPS: Final = 10
#: Accepted clock difference between an origin and us, in seconds, either way.
WINDOW: Final = 120.0
#: Message ids remembered at most.
MAX_SEEN: Final = 16_384


class Verdict(enum.Enum):
    """What to do with a received message."""

    NEW = "new"  # deliver, and forward if hops remain
    DUPLICATE = "duplicate"  # seen already: drop
    STALE = "stale"  # outside the window (or under the floor): drop


class SeenCache:
    """The ids of the messages accepted whose ``seq`` is still inside the window."""

    def __init__(self, *, window: float = WINDOW, max_entries: int = MAX_SEEN) -> None:
        if window <= 0 or max_entries < 1:
            raise ValueError("window and max_entries must be positive")
        self.window_us = int(window * 1_000_000)
        self.max_entries = max_entries
        self._ids: set[bytes] = set()
        self._heap: list[tuple[int, bytes]] = []
        #: Highest seq dropped for room; nothing at or below it is accepted.
        self.floor = 0

    def __len__(self) -> int:
        return len(self._ids)

    def check(self, message_id: bytes, seq: int, now: float) -> Verdict:
        """Classify a message; a NEW one is not remembered until :meth:`add` (once its
        signature checked out), so a forgery cannot hide the real message."""
        now_us = int(now * 1_000_000)
        self._expire(now_us)
        if seq <= self.floor or abs(seq - now_us) > self.window_us:
            return Verdict.STALE
        if message_id in self._ids:
            return Verdict.DUPLICATE
        return Verdict.NEW

    def add(self, message_id: bytes, seq: int) -> None:
        """Remember an accepted (or our own) message until its seq leaves the window."""
        if message_id in self._ids:
            return
        self._ids.add(message_id)
        heapq.heappush(self._heap, (seq, message_id))
        while len(self._ids) > self.max_entries:
            old_seq, old_id = heapq.heappop(self._heap)
            self._ids.discard(old_id)
            self.floor = max(self.floor, old_seq)

    def _expire(self, now_us: int) -> None:
        horizon = now_us - self.window_us
        while self._heap and self._heap[0][0] < horizon:
            _, old_id = heapq.heappop(self._heap)
            self._ids.discard(old_id)


class Origin:
    """Our own sequence numbers: our clock in microseconds, strictly increasing (two
    messages in one microsecond, or a clock stepping back, still get distinct seqs)."""

    def __init__(self) -> None:
        self.last = 0

    def next_seq(self, now: float) -> int:
        self.last = max(self.last + 1, int(now * 1_000_000))
        return self.last


def next_hops(hops: int) -> int:
    """Hops left for the copies we forward (0: do not forward)."""
    return max(hops - 1, 0)


def forward_targets(
    neighbours: Iterable[bytes], *, sender: bytes | None, origin: bytes
) -> list[bytes]:
    """Every neighbour but the one the message came from and its origin."""
    return [n for n in neighbours if n != sender and n != origin]
