"""dht-rpc's congestion window (``io.js CongestionWindow``), pure.

At most ``max_window`` (80) requests are sent per 750 ms drain slot, and at most twice that
across the ring of 4 slots; a request beyond it waits in the node's queue until a drain
tick frees room. A reply (or a request given up) gives its slot back. This keeps a node
that starts many queries at once from flooding its uplink or its peers.
"""

from __future__ import annotations

from typing import Final

__all__ = ("DEFAULT_MAX_WINDOW", "DRAIN_INTERVAL", "CongestionWindow")

DEFAULT_MAX_WINDOW: Final = 80
#: Seconds between drain ticks (JS: 750 ms), which also count token rotations.
DRAIN_INTERVAL: Final = 0.75


class CongestionWindow:
    """Counts sends in the current slot and in the whole ring of four."""

    __slots__ = ("_i", "_total", "_window", "max_window")

    def __init__(self, max_window: int = DEFAULT_MAX_WINDOW) -> None:
        if max_window < 1:
            raise ValueError("max_window must be positive")
        self.max_window = max_window
        self._i = 0
        self._total = 0
        self._window = [0, 0, 0, 0]

    def is_full(self) -> bool:
        return self._total >= 2 * self.max_window or self._window[self._i] >= self.max_window

    def send(self) -> None:
        self._total += 1
        self._window[self._i] += 1

    def recv(self) -> None:
        if self._window[self._i] > 0:
            self._window[self._i] -= 1
            self._total -= 1

    def drain(self) -> None:
        self._i = (self._i + 1) & 3
        self._total -= self._window[self._i]
        self._window[self._i] = 0

    def clear(self) -> None:
        self._i = 0
        self._total = 0
        self._window = [0, 0, 0, 0]
