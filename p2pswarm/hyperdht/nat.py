"""Our public address as other nodes report it: a port of the JS ``nat-sampler`` (pure).

Every response carries ``to``, the address the responder saw us at. The sampler keeps the
last 16 reports, each counted twice: as ``host:port`` and as the host alone. Once enough of
them agree (all when there are fewer than 4, then all but 1, 2 or 3) the address is known;
if only the hosts agree the NAT maps each destination to a new port (``port == 0``:
randomized). Reports are taken only from nodes with a proven id, or a few from the
bootstrap nodes (the node decides), so one liar moves nothing.
"""

from __future__ import annotations

from typing import Final

__all__ = ("NatSampler",)

_RING: Final = 32  # 16 samples, two entries each


class _Sample:
    __slots__ = ("hits", "host", "port")

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.hits = 1


class NatSampler:
    """``nat-sampler``'s ring, bump rule and thresholds, byte for byte in behaviour."""

    __slots__ = ("_a", "_b", "_samples", "_threshold", "_top", "host", "port", "size")

    def __init__(self) -> None:
        self.host: str | None = None
        self.port = 0
        self.size = 0
        self._a: _Sample | None = None
        self._b: _Sample | None = None
        self._threshold = 0
        self._top = 0
        self._samples: list[_Sample] = []

    def add(self, host: str, port: int) -> int:
        """Count one report; returns how many recent reports agree on ``host:port``."""
        a = self._bump(host, port, 2)
        b = self._bump(host, 0, 1)
        if len(self._samples) < _RING:
            self.size += 1
            s = self.size
            self._threshold = s - (0 if s < 4 else 1 if s < 8 else 2 if s < 12 else 3)
            self._samples += (a, b)
            self._top += 2
        else:
            if self._top == _RING:
                self._top = 0
            old_a = self._samples[self._top]
            self._samples[self._top] = a
            self._top += 1
            old_a.hits -= 1
            old_b = self._samples[self._top]
            self._samples[self._top] = b
            self._top += 1
            old_b.hits -= 1
        if self._a is None or self._a.hits < a.hits:
            self._a = a
        if self._b is None or self._b.hits < b.hits:
            self._b = b
        if self._a.hits >= self._threshold:
            self.host, self.port = self._a.host, self._a.port
        elif self._b.hits >= self._threshold:
            self.host, self.port = self._b.host, 0
        else:
            self.host, self.port = None, 0
        return a.hits

    def _bump(self, host: str, port: int, inc: int) -> _Sample:
        for i in range(4):
            j = (self._top - inc - 2 * i) & (_RING - 1)
            if j >= len(self._samples):
                break
            s = self._samples[j]
            if s.port == port and s.host == host:
                s.hits += 1
                return s
        return _Sample(host, port)
