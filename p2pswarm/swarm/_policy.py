"""The swarm's remaining decisions as pure functions: limits, admission, justification.

Everything here is synchronous and free of I/O, so the swarm's I/O layer only gathers the
facts (counts, the existing slot, which topics are joined), asks, and acts.
"""

from __future__ import annotations

import enum
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Final

from ._connection_set import Resolution, resolve_duplicate
from .peer_info import PeerInfo
from .peer_stats import PeerStats, PeerStatsTable

__all__ = (
    "MAX_PARALLEL",
    "MAX_PEERS",
    "Admission",
    "Limits",
    "SwarmStats",
    "admit_incoming",
    "worth_dialling",
    "worth_keeping",
)

#: Hyperswarm's defaults.
MAX_PEERS: Final = 64
MAX_PARALLEL: Final = 3


@dataclass(slots=True)
class SwarmStats:
    """Counters, as Hyperswarm's ``swarm.stats`` (``updates`` counts update events)."""

    updates: int = 0
    client_attempted: int = 0
    client_opened: int = 0
    client_closed: int = 0
    server_opened: int = 0
    server_closed: int = 0
    banned_peers: int = 0
    #: Per-peer traffic and request counters (see :class:`~p2pswarm.swarm.peer_stats.PeerStats`).
    per_peer: PeerStatsTable = field(default_factory=PeerStatsTable, repr=False, compare=False)

    @property
    def peers(self) -> dict[bytes, PeerStats]:
        """Each tracked peer's counters by public key, open connections included."""
        return self.per_peer.snapshot()


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def _optional_cap(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class Limits:
    """How many connections a swarm keeps.

    ``max_peers`` is a soft cap on all connections (open or pending, both directions)
    checked only before dialling a *discovered* peer: incoming connections and explicit
    peers are not refused for it (Hyperswarm's meaning). ``max_parallel`` bounds dials in
    flight. ``max_client_connections`` and ``max_server_connections`` cap each direction,
    pending handshakes included; None means no cap. Unlike Hyperswarm, the server cap is
    enforced, at the handshake, before the application sees anything.
    """

    max_peers: int = MAX_PEERS
    max_parallel: int = MAX_PARALLEL
    max_client: int | None = None
    max_server: int | None = None

    @classmethod
    def checked(
        cls,
        max_peers: object = MAX_PEERS,
        max_parallel: object = MAX_PARALLEL,
        max_client: object = None,
        max_server: object = None,
    ) -> Limits:
        """Validate user input; TypeError/ValueError say which option is wrong."""
        return cls(
            _positive_int(max_peers, "max_peers"),
            _positive_int(max_parallel, "max_parallel"),
            _optional_cap(max_client, "max_client_connections"),
            _optional_cap(max_server, "max_server_connections"),
        )

    def may_dial(self, *, connecting: int, client_slots: int) -> bool:
        """Room for one more dial (before ``max_peers``, which only discovered peers obey)."""
        if connecting >= self.max_parallel:
            return False
        return self.max_client is None or client_slots < self.max_client

    def within_max_peers(self, total_slots: int) -> bool:
        """Room for one more discovered peer."""
        return total_slots < self.max_peers

    def saturated(self, *, total_slots: int, client_slots: int) -> bool:
        """No discovered peer can be dialled until something closes."""
        if not self.within_max_peers(total_slots):
            return True
        return self.max_client is not None and client_slots >= self.max_client

    def may_accept(self, server_slots: int) -> bool:
        """Room for one more incoming connection from a peer we have no slot for."""
        return self.max_server is None or server_slots < self.max_server


class Admission(enum.Enum):
    """The verdict on an incoming handshake whose remote key is now known."""

    REFUSE = "refuse"
    ACCEPT = "accept"
    #: Accept, and retire the existing connection (or pending dial) to that peer.
    REPLACE = "replace"
    #: Refuse, and probe the existing connection with a keep-alive (it may be dead).
    REFUSE_AND_PROBE = "refuse-and-probe"


def admit_incoming(
    *,
    local_key: bytes,
    remote_key: bytes,
    accepting: bool,
    banned: bool,
    existing: tuple[bool, int, int] | None,
    server_slots: int,
    limits: Limits,
) -> Admission:
    """Decide on an incoming handshake (after the firewall said yes).

    ``existing`` describes the slot already held for ``remote_key``: (open, bytes read,
    bytes written), or None. ``accepting`` is False while closed or suspended.
    """
    if not accepting or banned or remote_key == local_key:
        return Admission.REFUSE
    if existing is None:
        return Admission.ACCEPT if limits.may_accept(server_slots) else Admission.REFUSE
    is_open, read, written = existing
    verdict = resolve_duplicate(
        local_key=local_key,
        remote_key=remote_key,
        new_is_initiator=False,
        existing_bytes_read=read,
        existing_bytes_written=written,
    )
    if verdict is Resolution.REPLACE_EXISTING:
        return Admission.REPLACE
    return Admission.REFUSE_AND_PROBE if is_open else Admission.REFUSE


def worth_dialling(peer: PeerInfo, client_topics: Container[bytes]) -> bool:
    """Is there a reason to (re)dial ``peer``: it is explicit, or we know where it is and
    it was found under a topic we still look up (``client_topics``)?"""
    if peer.explicit:
        return True
    if peer.record is None:
        return False
    return any(t in client_topics for t in peer.topics)


def worth_keeping(peer: PeerInfo, joined_topics: Container[bytes]) -> bool:
    """After leaving a topic with ``close=True``: does anything still justify the
    connection (explicit, or known under a topic still joined in any mode)?"""
    return peer.explicit or any(t in joined_topics for t in peer.topics)
