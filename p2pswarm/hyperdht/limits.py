"""Budgets for what strangers can make a node do: requests per source, reply bytes (pure).

A DHT node answers anyone, and UDP source addresses can be forged, so two things are
bounded (carried over from our own DHT's ``ratelimit``/``amplification`` modules):

- requests per source: a token bucket each (``burst`` at once, ``rate`` per second), least
  recently seen sources forgotten beyond ``max_sources``; a request past it is dropped
  before it is decoded;
- reply bytes to *unproven* senders: dht-rpc has no padding rule (a 44-byte FIND_NODE
  draws ~170 bytes, a LOOKUP far more), so instead of a per-reply ratio, whatever we send
  to addresses that never proved they receive datagrams (no valid token, not in our table,
  never answered us) comes out of a per-source and a global byte bucket. A spoofed flood
  therefore reflects at most the global rate, while honest first contacts are answered in
  full.

A *source* is the IP, except on loopback, where every local process (and every node of an
in-process testnet) shares 127.0.0.1, so there it is (IP, port). Time is an argument.
"""

from __future__ import annotations

import functools
import ipaddress
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

__all__ = (
    "DEFAULT_LIMITS",
    "Buckets",
    "Gate",
    "Limits",
    "SourceKey",
    "source_key",
)

SourceKey = str | tuple[str, int]


@dataclass(frozen=True, slots=True)
class Limits:
    """Requests per second and burst per source; unproven reply bytes per second and burst,
    per source and for all sources together; how many sources are remembered."""

    request_rate: float = 100.0
    request_burst: float = 400.0
    unproven_bytes_rate: float = 16_384.0
    unproven_bytes_burst: float = 65_536.0
    unproven_total_rate: float = 1_048_576.0
    unproven_total_burst: float = 4_194_304.0
    max_sources: int = 4096
    #: Addresses that answered us are remembered as proven this long, this many at most.
    proven_for: float = 600.0
    max_proven: int = 4096

    def __post_init__(self) -> None:
        values = (
            self.request_rate,
            self.request_burst,
            self.unproven_bytes_rate,
            self.unproven_bytes_burst,
            self.unproven_total_rate,
            self.unproven_total_burst,
        )
        if min(values) <= 0 or self.max_sources < 1:
            raise ValueError("every limit must be positive")


DEFAULT_LIMITS: Final = Limits()


@functools.lru_cache(maxsize=4096)
def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def source_key(address: tuple[str, int]) -> SourceKey:
    host, port = address
    return (host, port) if _is_loopback(host) else host


class Buckets:
    """A token bucket per key, at most ``max_keys`` of them (least recently used out)."""

    __slots__ = ("_buckets", "burst", "max_keys", "rate", "refused")

    def __init__(self, rate: float, burst: float, max_keys: int) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[object, tuple[float, float]] = OrderedDict()
        #: Spends refused so far, for diagnostics and tests.
        self.refused = 0

    def __len__(self) -> int:
        return len(self._buckets)

    def spend(self, key: object, now: float, amount: float = 1.0) -> bool:
        """Take ``amount`` from ``key``'s bucket; False (nothing taken) if it has less."""
        entry = self._buckets.pop(key, None)
        if entry is None:
            tokens = self.burst
            while len(self._buckets) >= self.max_keys:
                self._buckets.popitem(last=False)
        else:
            tokens, last = entry
            tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
        ok = tokens >= amount
        if ok:
            tokens -= amount
        else:
            self.refused += 1
        self._buckets[key] = (tokens, now)
        return ok


class Gate:
    """The node's budgets in one place: requests per source, reply bytes to unproven
    addresses, and the addresses proven lately (they answered one of our requests, or
    presented one of our tokens)."""

    __slots__ = ("_proven", "_replies", "_requests", "_total", "limits")

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._requests = Buckets(limits.request_rate, limits.request_burst, limits.max_sources)
        self._replies = Buckets(
            limits.unproven_bytes_rate, limits.unproven_bytes_burst, limits.max_sources
        )
        self._total = Buckets(limits.unproven_total_rate, limits.unproven_total_burst, 1)
        self._proven: OrderedDict[tuple[str, int], float] = OrderedDict()

    @property
    def tracked_sources(self) -> int:
        return len(self._requests)

    def allow_request(self, source: tuple[str, int], now: float) -> bool:
        return self._requests.spend(source_key(source), now)

    def prove(self, address: tuple[str, int], now: float) -> None:
        self._proven.pop(address, None)
        self._proven[address] = now
        while len(self._proven) > self.limits.max_proven:
            self._proven.popitem(last=False)

    def is_proven(self, address: tuple[str, int], now: float) -> bool:
        seen = self._proven.get(address)
        return seen is not None and 0 <= now - seen < self.limits.proven_for

    def allow_unproven_reply(self, to: tuple[str, int], size: int, now: float) -> bool:
        """Spend ``size`` bytes of the global and of ``to``'s reply budget."""
        return self._total.spend(None, now, size) and self._replies.spend(source_key(to), now, size)
