"""Our public address as other nodes report it: a port of the JS ``nat-sampler`` (pure).

Every response carries ``to``, the address the responder saw us at. The sampler keeps the
last 16 reports, each counted twice: as ``host:port`` and as the host alone. Once enough of
them agree (all when there are fewer than 4, then all but 1, 2 or 3) the address is known;
if only the hosts agree the NAT maps each destination to a new port (``port == 0``:
randomized). Reports are taken only from nodes with a proven id, or a few from the
bootstrap nodes (the node decides), so one liar moves nothing.

:class:`NatAnalysis` is the other half: the per-connection classification a hole puncher
makes of *its own* socket (``hyperdht/lib/nat.js``), from the ``to`` of the PING replies it
gets from a few DHT nodes. Pure: the pings are sent by :mod:`.holepuncher`.
"""

from __future__ import annotations

from typing import Final

from ..protocol.hyperdht_connect import Firewall

__all__ = ("MIN_SAMPLES", "NatAnalysis", "NatSampler")

#: Replies a hole puncher waits for before it decides (``nat.js _minSamples``).
MIN_SAMPLES: Final = 4

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


class _Count:
    __slots__ = ("hits", "host", "port")

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.hits = 1


def _add_count(samples: list[_Count], host: str, port: int) -> None:
    """Count one sample, keeping ``samples`` sorted by hits (most first), as ``addSample``."""
    for i, s in enumerate(samples):
        if s.port != port or s.host != host:
            continue
        s.hits += 1
        while i > 0 and samples[i - 1].hits < s.hits:
            samples[i - 1], samples[i] = s, samples[i - 1]
            i -= 1
        return
    samples.append(_Count(host, port))


class NatAnalysis:
    """One socket's NAT as the DHT nodes it pinged report it (``nat.js``, without the I/O).

    Rules, as JS: an unfirewalled node is OPEN. Otherwise nothing is decided before 3
    samples; a ``host:port`` seen 3 times is CONSISTENT; all different is RANDOM; two
    hits decide RANDOM if only one host was ever seen and there are 4 samples, CONSISTENT if
    two hosts each have a double hit, else RANDOM after 5. Each reporting node counts once.
    :meth:`freeze` stops updates once the verdict has been told to the other side.
    """

    __slots__ = (
        "_frozen",
        "_full",
        "_hosts",
        "_visited",
        "addresses",
        "firewall",
        "firewalled",
        "min_samples",
        "sampled",
    )

    def __init__(self, firewalled: bool) -> None:
        self.firewalled = firewalled
        self.firewall = Firewall.UNKNOWN if firewalled else Firewall.OPEN
        self.addresses: list[tuple[str, int]] | None = None
        self.sampled = 0
        self.min_samples = MIN_SAMPLES
        self._hosts: list[_Count] = []
        self._full: list[_Count] = []
        self._visited: set[tuple[str, int]] = set()
        self._frozen = False

    @property
    def decided(self) -> bool:
        """What ``nat.analyzing`` waits for: a consistent/open verdict, or enough samples."""
        if self.firewall in (Firewall.CONSISTENT, Firewall.OPEN):
            return True
        return self.sampled >= self.min_samples

    def add(self, to: tuple[str, int], reporter: tuple[str, int]) -> None:
        """``to``: our address as ``reporter`` saw it. A reporter counts once."""
        if reporter in self._visited:
            return
        self._visited.add(reporter)
        _add_count(self._hosts, to[0], 0)
        _add_count(self._full, to[0], to[1])
        self.sampled += 1
        if (self.sampled >= 3 or not self.firewalled) and not self._frozen:
            self.update()

    def freeze(self) -> None:
        self._frozen = True

    def unfreeze(self) -> None:
        self._frozen = False
        self._update_firewall()
        self._update_addresses()

    def update(self) -> None:
        if self.firewalled and self.firewall == Firewall.OPEN:
            self.firewall = Firewall.UNKNOWN
        self._update_firewall()
        self._update_addresses()

    def _update_firewall(self) -> None:
        if not self.firewalled:
            self.firewall = Firewall.OPEN
            return
        if self.sampled < 3:
            return
        top = self._full[0].hits
        if top >= 3:
            self.firewall = Firewall.CONSISTENT
        elif top == 1 or (len(self._hosts) == 1 and self.sampled > 3):
            self.firewall = Firewall.RANDOM
        elif len(self._hosts) > 1 and self._full[1].hits > 1:
            self.firewall = Firewall.CONSISTENT
        elif self.sampled > 4:
            self.firewall = Firewall.RANDOM

    def _update_addresses(self) -> None:
        if self.firewall == Firewall.UNKNOWN:
            self.addresses = None
        elif self.firewall == Firewall.RANDOM:
            self.addresses = [(self._hosts[0].host, 0)]
        elif self.firewall == Firewall.CONSISTENT:
            out: list[tuple[str, int]] = []
            for s in self._full:
                if s.hits >= 2 or len(out) < 2:
                    out.append((s.host, s.port))
            self.addresses = out
