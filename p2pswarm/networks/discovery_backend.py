"""The small interface through which the swarm reaches discovery.

The swarm never talks to the DHT directly: it holds a :class:`DiscoveryBackend`. Today
that is :class:`p2pswarm.dht.DHTNode`; a LAN backend or a HyperDHT-compatible one can be
plugged in without touching swarm policy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final, Protocol, runtime_checkable

from ..keys import KeyPair
from ..peer_record import PeerRecord

__all__ = ("FAILED_ROUND_RETRY", "REFRESH_INTERVAL", "REFRESH_JITTER", "DiscoveryBackend", "Lookup")

# How often a user of a backend refreshes what it announced and looks up: the schedule of
# the swarm's discovery rounds and of a backend's own self-announcement alike.

#: Seconds between discovery rounds (records live 20 minutes, so re-announce at 10).
REFRESH_INTERVAL: Final = 600.0
#: Up to this many extra seconds per round, so peers do not refresh in lockstep.
REFRESH_JITTER: Final = 120.0
#: After a failed round (the DHT unreachable, not yet bootstrapped, or just taken over), the
#: next one comes after this many seconds, doubling per failure up to the refresh interval:
#: Hyperswarm waits the full 10 minutes, leaving a swarm that started offline unfindable.
FAILED_ROUND_RETRY: Final = 1.0


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
