"""The small interface through which the swarm reaches discovery.

The swarm never talks to the DHT directly: it holds a :class:`DiscoveryBackend`. Today
that is :class:`p2pswarm.dht.DHTNode`; a LAN backend or a HyperDHT-compatible one can be
plugged in without touching swarm policy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from .keys import KeyPair
from .peer_record import PeerRecord

__all__ = ("DiscoveryBackend", "Lookup")


@runtime_checkable
class Lookup(Protocol):
    """A running lookup: an async iterator of verified records, deduplicated by key.

    Records stream as they arrive; iteration ends when the query has finished. ``aclose()``
    stops the query early. Usable as an async context manager.
    """

    def __aiter__(self) -> AsyncIterator[PeerRecord]: ...

    async def __anext__(self) -> PeerRecord: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Lookup: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


@runtime_checkable
class DiscoveryBackend(Protocol):
    """What the swarm needs from discovery; every method is safe to call concurrently."""

    async def announce(self, topic: bytes, key_pair: KeyPair, port: int) -> None:
        """Store a signed record saying ``key_pair.public_key`` serves ``topic`` on ``port``.

        The storing side records the announcer's observed source address, never a claimed
        one. Records expire, so callers re-announce periodically.
        """
        ...

    async def unannounce(self, topic: bytes, key_pair: KeyPair) -> None:
        """Remove our record for ``topic`` (a signed request) wherever it was stored."""
        ...

    def lookup(self, topic: bytes) -> Lookup:
        """Start finding the peers announced under ``topic``."""
        ...

    async def find_peer(self, public_key: bytes) -> PeerRecord | None:
        """Find a peer by its public key (it announced itself under its key), or None."""
        ...

    async def aclose(self) -> None:
        """Stop all queries and release the sockets."""
        ...
