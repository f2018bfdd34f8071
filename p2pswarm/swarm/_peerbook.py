"""A peer book at work in a swarm: what it records, and how it speeds up a restart.

:func:`run_peer_book` runs as one task of the swarm (``Swarm(peer_book=...)``). It

* records every peer discovery hands in (the new table; its source is its own address,
  which the storing DHT node observed), every dial that gave a connection (tried) or
  failed, and every ban (kept 24 hours by default, across restarts);
* re-applies the bans still running when the swarm starts, and lifts each one in the swarm
  when it expires;
* when a topic is joined as a client, queues the best peers the book knows under it at
  once (tried ones first, spread over networks), so a restarted swarm redials its peers
  before the DHT has answered; a stale address costs one failed dial;
* writes changes in batches, at most every :data:`FLUSH_DELAY` seconds, and once more when
  the swarm closes.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from typing import Any, Final, Protocol

import anyio
import anyio.abc

from ..connection import Connection
from ..errors import PeerBannedError
from ..peer_record import PeerAddress, PeerRecord
from ..peerbook.book import PeerBook
from ._pool import PeerPool
from .peer_info import PeerInfo

__all__ = ("FLUSH_DELAY", "RECONNECT_LIMIT", "BookKeeper", "run_peer_book")

logger = logging.getLogger("p2pswarm.peerbook")

#: Changes are written at most this often (seconds).
FLUSH_DELAY: Final = 2.0
#: Peers queued from the book per joined topic.
RECONNECT_LIMIT: Final = 8
#: The ``source`` tag of records that come from the book (not fed back into it).
SOURCE: Final = "peerbook"


class Swarm(Protocol):
    """What the book uses of its :class:`~p2pswarm.swarm.Swarm`."""

    connections: set[Connection]
    _pool: PeerPool[Connection]

    @property
    def peers(self) -> dict[bytes, PeerInfo]: ...

    def _handle_peer(self, record: PeerRecord, topic: bytes) -> bool: ...

    def on_ban(self, callback: Callable[[PeerInfo, Exception], Any]) -> Any: ...

    def remove_ban_callback(self, callback: Callable[[PeerInfo, Exception], Any]) -> bool: ...


class BookKeeper:
    """The swarm's observer that keeps ``book`` up to date (sync callbacks only)."""

    def __init__(self, swarm: Swarm, book: PeerBook) -> None:
        self.swarm = swarm
        self.book = book

    def peer_found(self, record: PeerRecord, topic: bytes) -> None:
        if record.source == SOURCE or not record.direct_addresses:
            return
        first = record.direct_addresses[0]
        self.book.add(record.public_key, first.host, first.port, topic=topic)

    def connected(self, conn: Connection, info: PeerInfo) -> None:
        # Only our own dials prove an address works; a dialler's source port is ephemeral.
        if not info.client or info.record is None or not info.record.direct_addresses:
            return
        key = conn.remote_public_key
        if self.book.get(key) is None:
            first = info.record.direct_addresses[0]
            self.book.add(key, first.host, first.port, topic=info.record.topic)
        self.book.good(key)

    def dial_failed(self, public_key: bytes) -> None:
        self.book.failed(public_key)

    def banned(self, info: PeerInfo, reason: Exception) -> None:
        self.book.ban(info.public_key, reason=str(reason)[:200], extend=False)

    def topic_joined(self, topic: bytes) -> None:
        """Queue the book's best peers for ``topic`` (joined as a client) right away."""
        skip = {c.remote_public_key for c in self.swarm.connections}
        for peer in self.book.candidates(limit=RECONNECT_LIMIT, topic=topic, exclude=skip):
            record = PeerRecord(
                peer.public_key, (PeerAddress(peer.host, peer.port),), topic=topic, source=SOURCE
            )
            self.swarm._handle_peer(record, topic)

    def apply_bans(self) -> None:
        """Ban in the swarm every peer the book holds a running ban for."""
        now = self.book.now()
        for ban in self.book.bans.bans():
            if ban.until > now:
                self.swarm._pool.ban(
                    ban.public_key, PeerBannedError(f"banned by the peer book: {ban.reason}")
                )

    def lift_expired(self) -> list[bytes]:
        """Expire the bans that ran out and unban those peers in the swarm."""
        lifted = self.book.expire_bans()
        for key in lifted:
            peer = self.swarm.peers.get(key)
            if peer is not None and peer.banned:
                peer.ban(False)
        return lifted


async def run_peer_book(
    swarm: Swarm,
    book_or_path: PeerBook | str | os.PathLike[str],
    *,
    task_status: anyio.abc.TaskStatus[BookKeeper] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Keep a peer book for ``swarm`` until cancelled (the swarm closing). A path is opened
    here and closed at the end; a :class:`PeerBook` passed in is flushed, not closed."""
    owned = not isinstance(book_or_path, PeerBook)
    book = await PeerBook.open(book_or_path) if owned else book_or_path  # type: ignore[arg-type]
    assert isinstance(book, PeerBook)
    keeper = BookKeeper(swarm, book)
    swarm.on_ban(keeper.banned)
    keeper.apply_bans()
    try:
        task_status.started(keeper)
        while True:
            keeper.lift_expired()
            expiry = book.bans.next_expiry()
            wait = math.inf if expiry is None else max(expiry - book.now(), 0.0)
            with anyio.move_on_after(wait):
                await book.wait_changed()
                await anyio.sleep(FLUSH_DELAY)  # batch what follows
                with anyio.CancelScope(shield=True):
                    await book.flush()
    finally:
        swarm.remove_ban_callback(keeper.banned)
        with anyio.CancelScope(shield=True):
            if owned:
                await book.aclose()
            else:
                await book.flush()
