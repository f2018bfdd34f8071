"""Per-peer request rate limits that penalise and finally ban: a pure, clock-injected policy.

Each peer has a token bucket (``rate`` requests per second, ``burst`` at once). A request
beyond it is refused and costs the peer ``penalty`` points of reputation (lisk-p2p's
``applyPenalty``: every peer starts at 100 and is banned at 0); reputation comes back at
``recovery`` points per second of good behaviour. So a peer that bursts now and then is
refused a few requests, and one that floods is refused, then banned.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = ("INITIAL_REPUTATION", "RateLimiter", "Verdict")

INITIAL_REPUTATION: Final = 100.0


class Verdict(enum.Enum):
    ALLOW = "allow"
    REFUSE = "refuse"
    BAN = "ban"


@dataclass(slots=True)
class _Bucket:
    tokens: float
    reputation: float
    updated: float


class RateLimiter:
    """Token buckets and reputations by peer key; ``now`` is passed in (seconds)."""

    def __init__(
        self,
        *,
        rate: float = 100.0,
        burst: float = 200.0,
        penalty: float = 10.0,
        recovery: float = 1.0,
    ) -> None:
        if rate <= 0 or burst < 1 or penalty < 0 or recovery < 0:
            raise ValueError("rate and burst must be positive, penalty and recovery >= 0")
        self.rate = rate
        self.burst = burst
        self.penalty = penalty
        self.recovery = recovery
        self._buckets: dict[bytes, _Bucket] = {}

    def admit(self, key: bytes, now: float) -> Verdict:
        """Account one request from ``key``: ALLOW it, REFUSE it (penalised), or BAN."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, INITIAL_REPUTATION, now)
        elapsed = max(0.0, now - bucket.updated)
        bucket.updated = now
        bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
        bucket.reputation = min(INITIAL_REPUTATION, bucket.reputation + elapsed * self.recovery)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return Verdict.ALLOW
        bucket.reputation -= self.penalty
        return Verdict.BAN if bucket.reputation <= 0 else Verdict.REFUSE

    def penalty_of(self, key: bytes) -> float:
        """0 for a clean peer, towards 1 as it nears a ban (for peer selection)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        return max(0.0, 1 - bucket.reputation / INITIAL_REPUTATION)

    def reputation(self, key: bytes) -> float:
        bucket = self._buckets.get(key)
        return INITIAL_REPUTATION if bucket is None else bucket.reputation

    def forget(self, key: bytes) -> None:
        self._buckets.pop(key, None)
