"""When to redial a peer whose connection closed: four back-off tiers, batched (pure).

Hyperswarm's ``lib/retry-timer.js`` and ``lib/bulk-timer.js`` without the timers: the swarm
passes the current time in and asks what is due, and sleeps until :meth:`next_deadline`.

* Four tiers S, M, L, X (defaults about 1 s, 5 s, 15 s and 10 min, each with its own random
  extra computed once, as upstream does at module load), each plus ``random(0..jitter)``
  drawn once when the timer set is made.
* Each tier batches its peers: it "ticks" every ``0.66 * delay`` from its first use, and a
  peer added during one tick period is released at the end of the next, so the real delay
  is between 0.66x and 1.32x the tier's value. Many peers dropping at once then cost one
  wake-up, not one timer each.
* Which tier: banned or ``reconnect(False)`` peers are never retried; more than 3 attempts
  means give up, unless the peer is explicit (``join_peer``), then X forever; 0 attempts
  uses S; a proven peer (one that once connected) uses S, M, L for 1, 2, 3 attempts; an
  unproven one M, L, L.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from .peer_info import PeerInfo

__all__ = ("DEFAULT_JITTER", "Backoffs", "BulkTimer", "RetryTimer", "Tier")

#: Extra random delay (seconds) added once per tier, as Hyperswarm's ``BACKOFF_JITTER``.
DEFAULT_JITTER: Final = 0.5

#: A tier ticks every this fraction of its delay (upstream's ``floor(0.66 * time)``).
TICK_FRACTION: Final = 0.66

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoffs:
    """The four base delays in seconds: short, medium, long, and the explicit-peer one."""

    s: float
    m: float
    l: float  # noqa: E741 (the tier's name upstream)
    x: float

    @classmethod
    def default(cls, rng: random.Random | None = None) -> Backoffs:
        """Hyperswarm's defaults, each with its own random extra (1-1.5 s, 5-6 s, ...)."""
        rnd = rng or random.Random()
        return cls(
            s=1.0 + rnd.uniform(0, 0.5),
            m=5.0 + rnd.uniform(0, 1.0),
            l=15.0 + rnd.uniform(0, 2.0),
            x=600.0 + rnd.uniform(0, 120.0),
        )

    @classmethod
    def coerce(cls, value: Sequence[float] | Backoffs | None) -> Backoffs:
        """Accept ``None`` (defaults), a :class:`Backoffs`, or four positive numbers."""
        if value is None:
            return cls.default()
        if isinstance(value, Backoffs):
            return value
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise TypeError("backoffs must be a sequence of 4 numbers (seconds)")
        values = tuple(value)
        if len(values) != 4:
            raise ValueError(f"backoffs must be 4 numbers (S, M, L, X seconds), got {len(values)}")
        for item in values:
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise TypeError(f"backoffs must be numbers, got {type(item).__name__}")
            if not math.isfinite(item) or item <= 0:
                raise ValueError(f"backoffs must be positive finite seconds, got {item!r}")
        return cls(*(float(v) for v in values))


class BulkTimer(Generic[T]):
    """Batches items into ticks of ``0.66 * delay``; an item is due after 1-2 tick periods.

    The tick grid starts at the first :meth:`add` and is never moved (upstream's lazily
    created ``setInterval``), so items added in the same period come out together.
    """

    __slots__ = ("_batches", "_origin", "delay", "period")

    def __init__(self, delay: float) -> None:
        if not delay > 0:
            raise ValueError("delay must be positive")
        self.delay = delay
        self.period = TICK_FRACTION * delay
        self._origin: float | None = None
        # release time -> items, in insertion order (dicts keep order; values unique per batch)
        self._batches: dict[float, dict[T, None]] = {}

    def _release_time(self, now: float) -> float:
        if self._origin is None:
            self._origin = now
        ticks_done = math.floor((now - self._origin) / self.period)
        # The current period's batch moves to "next" at the coming tick and is released at
        # the tick after that.
        return self._origin + (ticks_done + 2) * self.period

    def add(self, item: T, now: float) -> float:
        """Schedule ``item``; returns the time it will be due."""
        when = self._release_time(now)
        self._batches.setdefault(when, {})[item] = None
        return when

    def discard(self, item: T) -> None:
        """Forget ``item`` if it is scheduled."""
        for when, batch in list(self._batches.items()):
            if item in batch:
                del batch[item]
                if not batch:
                    del self._batches[when]

    def due(self, now: float) -> list[T]:
        """Remove and return every item whose batch is released at or before ``now``."""
        ready = sorted(when for when in self._batches if when <= now)
        out: list[T] = []
        for when in ready:
            out.extend(self._batches.pop(when))
        return out

    def next_deadline(self) -> float | None:
        """When the earliest batch is released, or None when nothing is scheduled."""
        return min(self._batches, default=None)

    def clear(self) -> None:
        """Drop everything scheduled (the tick grid restarts with the next add)."""
        self._batches.clear()
        self._origin = None

    def __len__(self) -> int:
        return sum(len(batch) for batch in self._batches.values())


class Tier:
    """Names of the four tiers, for logs and tests."""

    S: Final = "S"
    M: Final = "M"
    L: Final = "L"
    X: Final = "X"


class RetryTimer:
    """Picks a back-off tier for a peer that closed and says when it is due to redial."""

    __slots__ = ("backoffs", "jitter", "timers")

    def __init__(
        self,
        backoffs: Backoffs,
        jitter: float = DEFAULT_JITTER,
        *,
        rng: random.Random | None = None,
    ) -> None:
        if isinstance(jitter, bool) or not isinstance(jitter, int | float):
            raise TypeError("jitter must be a number of seconds")
        if not math.isfinite(jitter) or jitter < 0:
            raise ValueError(f"jitter must be finite and >= 0 seconds, got {jitter!r}")
        rnd = rng or random.Random()
        self.backoffs = backoffs
        self.jitter = float(jitter)
        delays = {
            Tier.S: backoffs.s,
            Tier.M: backoffs.m,
            Tier.L: backoffs.l,
            Tier.X: backoffs.x,
        }
        self.timers: dict[str, BulkTimer[PeerInfo]] = {
            name: BulkTimer(delay + rnd.uniform(0, self.jitter)) for name, delay in delays.items()
        }

    @staticmethod
    def select_tier(peer: PeerInfo) -> str | None:
        """The tier for ``peer``'s next retry, or None when it must not be retried."""
        if peer.banned or not peer.reconnecting:
            return None
        attempts = peer.attempts
        if attempts > 3:
            return Tier.X if peer.explicit else None
        if attempts == 0:
            return Tier.S
        if peer.proven:
            return (Tier.S, Tier.M, Tier.L)[attempts - 1]
        return (Tier.M, Tier.L, Tier.L)[attempts - 1]

    def add(self, peer: PeerInfo, now: float) -> bool:
        """Schedule a retry of ``peer``; False (nothing scheduled) when it is given up."""
        tier = self.select_tier(peer)
        if tier is None:
            return False
        self.timers[tier].add(peer, now)
        return True

    def discard(self, peer: PeerInfo) -> None:
        """Cancel ``peer``'s pending retry, if any."""
        for timer in self.timers.values():
            timer.discard(peer)

    def due(self, now: float) -> list[PeerInfo]:
        """Every peer whose retry time has come (removed from the timer)."""
        out: list[PeerInfo] = []
        for timer in self.timers.values():
            out.extend(timer.due(now))
        return out

    def next_deadline(self) -> float | None:
        """The earliest time anything is due, or None."""
        deadlines: Iterable[float | None] = (t.next_deadline() for t in self.timers.values())
        return min((d for d in deadlines if d is not None), default=None)

    def clear(self) -> list[PeerInfo]:
        """Drop every scheduled retry; returns the peers that were waiting."""
        dropped: list[PeerInfo] = []
        for timer in self.timers.values():
            dropped.extend(timer.due(math.inf))
            timer.clear()
        return dropped

    def __len__(self) -> int:
        return sum(len(t) for t in self.timers.values())
