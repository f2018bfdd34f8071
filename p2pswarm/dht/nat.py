"""What other DHT nodes report of our address, and what that says about our NAT (pure).

Every DHT reply carries the requester's address as the responder saw it. Collected from
several responders, those reports give a node its public address and a first reading of
its NAT: if every responder sees the same (host, port), the mapping is *consistent* (hole
punching can work by addressing that port); if the port differs per responder, it is
*random*; if what they see equals the local socket address, there is no NAT at all. The
classes are HyperDHT's firewall constants, so a later hole-punching layer can use them.
"""

from __future__ import annotations

import enum
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Final

__all__ = ("NatObserver", "NatStatus", "NatType")

#: Reports kept, one per responder, most recent ones.
MAX_REPORTERS: Final = 32
#: Distinct responders needed before calling a mapping consistent or random.
MIN_REPORTERS: Final = 2


class NatType(enum.IntEnum):
    UNKNOWN = 0
    OPEN = 1
    CONSISTENT = 2
    RANDOM = 3


@dataclass(frozen=True, slots=True)
class NatStatus:
    """The current reading: the most reported public address and the NAT class."""

    address: tuple[str, int] | None
    nat_type: NatType
    reporters: int


class NatObserver:
    """Collects (responder, address it saw us at) reports; one entry per responder."""

    __slots__ = ("_local", "_reports")

    def __init__(self, local_address: tuple[str, int] | None = None) -> None:
        self._local = local_address
        self._reports: OrderedDict[tuple[str, int], tuple[str, int]] = OrderedDict()

    def set_local_address(self, address: tuple[str, int]) -> None:
        self._local = address

    def add(self, responder: tuple[str, int], seen_as: tuple[str, int]) -> None:
        """Record that ``responder`` saw our datagram coming from ``seen_as``."""
        self._reports.pop(responder, None)
        self._reports[responder] = seen_as
        while len(self._reports) > MAX_REPORTERS:
            self._reports.popitem(last=False)

    def status(self) -> NatStatus:
        if not self._reports:
            return NatStatus(None, NatType.UNKNOWN, 0)
        counts = Counter(self._reports.values())
        address, _ = counts.most_common(1)[0]
        reporters = len(self._reports)
        if reporters < MIN_REPORTERS:
            nat_type = NatType.UNKNOWN
        elif len(counts) > 1:
            nat_type = NatType.RANDOM
        elif address == self._local:
            nat_type = NatType.OPEN
        else:
            nat_type = NatType.CONSISTENT
        return NatStatus(address, nat_type, reporters)
