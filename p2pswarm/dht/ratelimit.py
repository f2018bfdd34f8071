"""Per-source request budgets: a token bucket per sender, in bounded memory (pure).

A DHT node answers anyone, so one sender (or one spoofed victim address) must not be able
to make it do unbounded work or send unbounded replies. Each source gets a token bucket:
``burst`` requests at once, refilled at ``rate`` per second; a request beyond that is
dropped before it is even decoded. The budget is generous (a lookup asks a node once, an
announce twice, a refresh every few minutes), so honest peers, even many behind one NAT,
never meet it; it exists to cap floods.

Memory is bounded: at most ``max_sources`` buckets, least recently seen first out. An
attacker cycling through more spoofed addresses than that can get fresh buckets, but the
address it attacks stays recently seen and so keeps its (empty) bucket.

**What a source is** (:func:`source_key`). A real deployment keys on the IP: ports are
free to choose, so keying on (IP, port) would give an attacker 65535 budgets per address.
Loopback is the exception: there every process on the machine, and every node of an
in-process testnet, shares 127.0.0.1, and the only senders are local programs (which
could exhaust the machine anyway), so a loopback source is its (IP, port). The same key
decides what counts as a *distinct* reporter in NAT observation.

Time is an argument (seconds on any monotonic clock).
"""

from __future__ import annotations

import functools
import ipaddress
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

__all__ = ("DEFAULT_RATE_LIMIT", "RateLimit", "SourceKey", "SourceRateLimiter", "source_key")

#: An IP, or (loopback only) an (IP, port).
SourceKey = str | tuple[str, int]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Requests per second per source, the burst a source may spend at once, and how
    many sources are remembered."""

    rate: float = 100.0
    burst: float = 400.0
    max_sources: int = 4096

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1 or self.max_sources < 1:
            raise ValueError("rate, burst and max_sources must be positive (burst at least 1)")


DEFAULT_RATE_LIMIT: Final = RateLimit()


@functools.lru_cache(maxsize=4096)
def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def source_key(address: tuple[str, int]) -> SourceKey:
    """Who sent a datagram, for budgets and for counting distinct reporters."""
    host, port = address
    return (host, port) if _is_loopback(host) else host


class SourceRateLimiter:
    """A token bucket per source, at most ``limit.max_sources`` of them."""

    __slots__ = ("_buckets", "limit", "throttled")

    def __init__(self, limit: RateLimit = DEFAULT_RATE_LIMIT) -> None:
        self.limit = limit
        #: source -> (tokens left, time of the last update); least recently seen first.
        self._buckets: OrderedDict[SourceKey, tuple[float, float]] = OrderedDict()
        #: Requests refused so far; for diagnostics.
        self.throttled = 0

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, source: SourceKey, now: float) -> bool:
        """Spend one token of ``source``'s bucket; False (and nothing spent) when empty."""
        limit = self.limit
        entry = self._buckets.pop(source, None)
        if entry is None:
            tokens = limit.burst
            while len(self._buckets) >= limit.max_sources:
                self._buckets.popitem(last=False)
        else:
            tokens, last = entry
            # max(): a clock that steps back refills nothing rather than draining.
            tokens = min(limit.burst, tokens + max(0.0, now - last) * limit.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        else:
            self.throttled += 1
        self._buckets[source] = (tokens, now)
        return allowed
