"""What discovery tells the swarm about a peer: its public key and how to reach it.

This is the plain, already-verified form that every discovery backend produces and the
dialler consumes. The signed wire form lives in :mod:`p2pswarm.dht.records`. An address
list (not one port) is carried from the start so that later ways of reaching a peer
(relays that forward a connect request, hole punching) are additions, not a rewrite.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ("AddressKind", "PeerAddress", "PeerRecord")


class AddressKind(enum.IntEnum):
    """How an address leads to the peer. Unknown kinds on the wire are skipped, not fatal."""

    #: The peer itself listens here (TCP), as the storing DHT node observed its source IP.
    DIRECT = 1
    #: A DHT node that will forward a connect request to the peer (HyperDHT's relayAddresses).
    RELAY = 2


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """One (host, port) of a peer, with what kind of address it is."""

    host: str
    port: int
    kind: AddressKind = AddressKind.DIRECT

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class PeerRecord:
    """A peer found by discovery: who it is and where to dial it.

    ``addresses`` is ordered by preference. ``topic`` is the topic it was found under, or
    ``None`` when it was found by its public key (``find_peer``).
    """

    public_key: bytes
    addresses: tuple[PeerAddress, ...]
    topic: bytes | None = None
    #: The announcer's sequence number; a higher one replaces a lower one.
    seq: int = 0
    #: Free-form origin tag for logs and stats ("dht", "lan", ...).
    source: str = field(default="dht", compare=False)

    @property
    def direct_addresses(self) -> tuple[PeerAddress, ...]:
        """The addresses the peer listens on itself, in preference order."""
        return tuple(a for a in self.addresses if a.kind is AddressKind.DIRECT)
