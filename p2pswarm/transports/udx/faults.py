"""Seeded packet loss and reordering for a UDX socket, to test recovery on a real socket.

A :class:`Faults` sits on both directions of a :class:`~p2pswarm.transports.udx.UDXSocket`:
each datagram is dropped with probability ``drop``, or held back with probability
``reorder`` and released after the next one passes (so it arrives late, out of order).
Outgoing datagrams that pass can also be delayed, by ``delay`` seconds plus up to
``jitter`` more (uniform): the socket holds them on a timer, which is how a lab without
``tc netem`` gets a round trip longer than a veth's. The same seed gives the same
decisions, so a failing schedule can be replayed.
"""

from __future__ import annotations

import random

__all__ = ("Faults",)


class _Direction:
    __slots__ = ("held", "rng")

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.held: list[bytes] = []


class Faults:
    """Drop and reorder hook. ``only_udx`` spares datagrams that are not UDX packets."""

    def __init__(
        self,
        *,
        seed: int = 0,
        drop: float = 0.0,
        reorder: float = 0.0,
        delay: float = 0.0,
        jitter: float = 0.0,
        only_udx: bool = True,
    ) -> None:
        if not (0.0 <= drop < 1.0 and 0.0 <= reorder < 1.0):
            raise ValueError("drop and reorder are probabilities below 1")
        if not (0.0 <= delay <= 10.0 and 0.0 <= jitter <= 10.0):
            raise ValueError("delay and jitter are seconds, from 0 to 10")
        self.drop = drop
        self.reorder = reorder
        self.delay = delay
        self.jitter = jitter
        self.only_udx = only_udx
        self._latency_rng = random.Random(seed ^ 0xDE1A)
        self._out = _Direction(seed)
        self._in = _Direction(seed ^ 0x5EED)
        self.dropped = 0
        self.reordered = 0

    def outgoing(self, datagram: bytes) -> list[bytes]:
        return self._apply(self._out, datagram)

    @property
    def delays(self) -> bool:
        """Whether outgoing datagrams are held back at all."""
        return self.delay > 0 or self.jitter > 0

    def latency(self) -> float:
        """How long the next outgoing datagram waits before it is sent (seeded)."""
        if not self.jitter:
            return self.delay
        return self.delay + self.jitter * self._latency_rng.random()

    def incoming(self, datagram: bytes) -> list[bytes]:
        return self._apply(self._in, datagram)

    def _apply(self, direction: _Direction, datagram: bytes) -> list[bytes]:
        if self.only_udx and not (len(datagram) >= 20 and datagram[0] == 0xFF):
            return [datagram]
        roll = direction.rng.random()
        if roll < self.drop:
            self.dropped += 1
            return []
        if roll < self.drop + self.reorder and len(direction.held) < 4:
            self.reordered += 1
            direction.held.append(datagram)
            return []
        out = [datagram, *direction.held]
        direction.held.clear()
        return out
