"""What the swarm knows about one peer, and the pure rules that follow from it.

A :class:`PeerInfo` exists for every peer the swarm is connected to, connecting to, waiting
to retry, has queued, was asked to keep (``join_peer``) or has banned. It carries no I/O:
the swarm feeds it events (connected, disconnected, rediscovered) with the current time,
and reads back decisions (its dial priority, whether it may be forgotten).

The rules are Hyperswarm's (``lib/peer-info.js``), with two differences a user can see:
``topics`` is also filled on the accepting side, from the topics the dialler sent in its
handshake hello; and a banned peer stays known forever (so the ban holds) while every
other peer is forgotten as soon as nothing refers to it, so a long-running swarm does not
grow without bound.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Final

from ..keys import check_public_key
from ..peer_record import PeerRecord

__all__ = ("MIN_CONNECTION_TIME", "PeerInfo", "Priority")

#: A connection that lived at least this long (seconds) counts as healthy: when it closes,
#: the peer's attempt counter starts again from zero ("fast retry").
MIN_CONNECTION_TIME: Final = 15.0

#: Topics remembered per peer. A hostile dialler cannot make one PeerInfo grow past this.
MAX_TOPICS_PER_PEER: Final = 256


class Priority(enum.IntEnum):
    """Dial order: higher first; peers of equal priority come out in random order."""

    VERY_LOW = 0
    LOW = 1
    NORMAL = 2
    HIGH = 3
    VERY_HIGH = 4


# attempts -> priority. A peer that just dropped (1 attempt) is redialled before fresh
# peers (0 attempts); one that keeps failing sinks to the bottom.
_PRIORITY_BY_ATTEMPTS: Final = {
    0: Priority.NORMAL,
    1: Priority.VERY_HIGH,
    2: Priority.HIGH,
    3: Priority.LOW,
}


class PeerInfo:
    """One remote peer as the swarm sees it; handed to connection handlers.

    Attributes an application reads:

    * ``public_key``: the peer's 32-byte identity.
    * ``topics``: the topics this peer is known under, in the order learned. On the dialling
      side they come from lookups; on the accepting side from the dialler's handshake hello.
    * ``client``: True when we dialled the current (or last) connection; ``server`` is the
      opposite.
    * ``info``: the node info the peer published (``swarm.set_info``), ``{}`` until known.
    * ``banned``, ``explicit`` (kept by ``join_peer``), ``proven`` (a connection once
      opened), ``attempts`` (closes since the last healthy connection), ``priority`` and
      ``prioritized``.

    Only :meth:`ban` and :meth:`reconnect` are meant to be called by applications.
    """

    __slots__ = (
        "_on_ban",
        "_refused",
        "attempts",
        "banned",
        "client",
        "connected_time",
        "disconnected_time",
        "explicit",
        "info",
        "proven",
        "public_key",
        "queued",
        "reconnecting",
        "record",
        "topics",
        "waiting",
    )

    public_key: bytes
    topics: list[bytes]
    client: bool
    banned: bool
    explicit: bool
    proven: bool
    reconnecting: bool
    attempts: int
    connected_time: float | None
    disconnected_time: float | None
    queued: bool
    waiting: bool
    record: PeerRecord | None
    info: dict[str, Any]

    def __init__(
        self,
        public_key: bytes,
        *,
        client: bool = False,
        record: PeerRecord | None = None,
        on_ban: Callable[[PeerInfo, bool], None] | None = None,
    ) -> None:
        self.public_key = check_public_key(public_key)
        self.topics = []
        self.client = client
        self.banned = False
        self.explicit = False
        self.proven = False
        self.reconnecting = True
        self.attempts = 0
        self.connected_time = None
        self.disconnected_time = None
        #: Sitting in the swarm's dial queue.
        self.queued = False
        #: Sitting in a retry timer.
        self.waiting = False
        #: Where to dial it: the newest record discovery returned (None: find it by key).
        self.record = record
        #: The peer's node info (``swarm.set_info`` on its side), once its channel opened.
        self.info = {}
        self._on_ban = on_ban
        #: The last dial was refused and not counted (see ``PeerPool.dial_ended``).
        self._refused = False

    # -- what applications call -------------------------------------------------------------

    def ban(self, banned: bool = True) -> None:
        """Ban (or unban) the peer: no dial to it and no handshake from it is accepted.

        An open connection is not closed by a ban: close it yourself if you want it gone.
        A banned peer is remembered for the swarm's lifetime; unbanning lets it be
        forgotten again once nothing else refers to it.
        """
        banned = bool(banned)
        if banned == self.banned:
            return
        self.banned = banned
        if self._on_ban is not None:
            self._on_ban(self, banned)

    def reconnect(self, enabled: bool = True) -> None:
        """Allow (default) or forbid redialling this peer after its connection closes."""
        self.reconnecting = bool(enabled)

    # -- derived state ----------------------------------------------------------------------

    @property
    def server(self) -> bool:
        """True when the peer dialled us (we accepted the current or last connection)."""
        return not self.client

    @property
    def priority(self) -> Priority:
        """Where this peer goes in the dial queue, from its attempt count."""
        return _PRIORITY_BY_ATTEMPTS.get(self.attempts, Priority.VERY_LOW)

    @property
    def prioritized(self) -> bool:
        """True while the peer is still worth dialling ahead of given-up ones."""
        return self.priority >= Priority.NORMAL

    # -- events the swarm feeds in ----------------------------------------------------------

    def _add_topic(self, topic: bytes) -> bool:
        """Remember ``topic``; False if it was already known (or the per-peer cap is hit)."""
        if topic in self.topics or len(self.topics) >= MAX_TOPICS_PER_PEER:
            return False
        self.topics.append(topic)
        return True

    def _connected(self, now: float, *, client: bool) -> None:
        """A connection to this peer opened (passed dedup and is handed to the app)."""
        self.client = client
        self.proven = True
        self.connected_time = now
        self._refused = False

    def _disconnected(self, now: float) -> None:
        """A connection (or a dial) to this peer ended: count one attempt.

        A connection that lived :data:`MIN_CONNECTION_TIME` or longer first resets the count,
        so a long healthy link that drops is retried at once, as a new one would be.
        """
        if self.connected_time is not None and now - self.connected_time >= MIN_CONNECTION_TIME:
            self.attempts = 0
        self.attempts += 1
        self.connected_time = None
        self.disconnected_time = now
        self._refused = False

    def _reset(self) -> None:
        """Forget the failure history: discovery just saw the peer alive again."""
        self.attempts = 0

    def _collectable(self, *, has_connection: bool) -> bool:
        """True when nothing refers to this peer any more, so it may be forgotten."""
        return not (self.banned or self.queued or self.waiting or self.explicit or has_connection)

    def __repr__(self) -> str:
        flags = [
            name
            for name, on in (
                ("client" if self.client else "server", True),
                ("banned", self.banned),
                ("explicit", self.explicit),
                ("proven", self.proven),
                ("queued", self.queued),
                ("waiting", self.waiting),
            )
            if on
        ]
        return (
            f"<PeerInfo {self.public_key.hex()[:16]}… attempts={self.attempts} "
            f"topics={len(self.topics)} {' '.join(flags)}>"
        )
