"""What other DHT nodes report of our address, and what that says about our NAT (pure).

Every DHT reply carries the requester's address as the responder saw it. Collected from
several responders, those reports give a node its public address and a first reading of
its NAT: if responders see the same (host, port), the mapping is *consistent* (hole
punching can work by addressing that port); if the port differs per responder, it is
*random*; if what they see equals the local socket address, there is no NAT at all. The
classes are HyperDHT's firewall constants, so a later hole-punching layer can use them.

Any responder can lie, so no single report decides anything:

* an address counts only when at least two distinct reporters agree on it, and a reading of
  *open* or *consistent* needs such an address backed by a strict majority of reporters
  (a lone dissenter, liar or stale, is outvoted);
* *random* needs disagreement that survives ignoring any one reporter: at least three
  distinct addresses, or two each seen by two reporters. One honest report and one lie are
  just *unknown*.

A liar cannot fake agreement with an honest report it has not seen: under a random NAT
the port each responder sees is its own. Reporters are distinct by
:func:`~p2pswarm.dht.ratelimit.source_key` (by IP, so one host with many ports is one
voice; on loopback, by socket).
"""

from __future__ import annotations

import enum
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Final

from .ratelimit import SourceKey, source_key

__all__ = ("NatObserver", "NatStatus", "NatType")

#: Reports kept, one per responder, most recent ones.
MAX_REPORTERS: Final = 32
#: Distinct reporters that must agree on an address before it counts.
MIN_AGREEMENT: Final = 2


class NatType(enum.IntEnum):
    UNKNOWN = 0
    OPEN = 1
    CONSISTENT = 2
    RANDOM = 3


@dataclass(frozen=True, slots=True)
class NatStatus:
    """The current reading: the agreed public address (None until there is one), the NAT
    class, and how many distinct reporters the reading rests on."""

    address: tuple[str, int] | None
    nat_type: NatType
    reporters: int


class NatObserver:
    """Collects (responder, address it saw us at) reports; one entry per responder."""

    __slots__ = ("_local", "_reports")

    def __init__(self, local_address: tuple[str, int] | None = None) -> None:
        self._local = local_address
        self._reports: OrderedDict[SourceKey, tuple[str, int]] = OrderedDict()

    def set_local_address(self, address: tuple[str, int]) -> None:
        self._local = address

    def add(self, responder: tuple[str, int], seen_as: tuple[str, int]) -> None:
        """Record that ``responder`` saw our datagram coming from ``seen_as``."""
        reporter = source_key(responder)
        self._reports.pop(reporter, None)
        self._reports[reporter] = seen_as
        while len(self._reports) > MAX_REPORTERS:
            self._reports.popitem(last=False)

    def status(self) -> NatStatus:
        reporters = len(self._reports)
        counts = Counter(self._reports.values()).most_common()
        if not counts:
            return NatStatus(None, NatType.UNKNOWN, 0)
        address, backers = counts[0]
        if backers >= MIN_AGREEMENT and backers > reporters - backers:
            nat_type = NatType.OPEN if address == self._local else NatType.CONSISTENT
            return NatStatus(address, nat_type, reporters)
        agreed = [count for _, count in counts if count >= MIN_AGREEMENT]
        if len(counts) >= 3 or len(agreed) >= 2:
            return NatStatus(None, NatType.RANDOM, reporters)
        return NatStatus(None, NatType.UNKNOWN, reporters)
