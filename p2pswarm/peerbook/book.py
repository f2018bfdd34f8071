"""The peer book: known peers and bans in memory, saved to sqlite off the event loop.

Every query and change is synchronous and in memory (the tables are small); the changed
rows are remembered and written by :meth:`PeerBook.flush` in a worker thread
(``anyio.to_thread``), one write at a time, so the event loop never waits on the disk. A
failed write (the file locked by someone else, a full disk) is logged and retried at the
next flush; nothing is lost from memory and nothing raises.

Use it through a swarm (``Swarm(peer_book="peers.db")``, see :mod:`.attach`) or alone::

    book = await PeerBook.open("peers.db")
    try:
        book.add(public_key, "203.0.113.7", 49737, topic=room)
        ...
    finally:
        await book.aclose()
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import anyio
import anyio.to_thread

from ..keys import check_public_key
from .addrman import AddrMan, KnownPeer
from .bans import DEFAULT_BAN_DURATION, Ban, BanList
from .store import Loaded, Store, open_store

__all__ = ("PeerBook",)

logger = logging.getLogger("p2pswarm.peerbook")


class PeerBook:
    """Known peers (tried/new tables, :class:`~.addrman.AddrMan`) and expiring bans
    (:class:`~.bans.BanList`), persisted in one sqlite file.

    ``clock`` returns seconds since the epoch (``time.time`` by default; inject a fake one
    in tests): the book's times must mean the same thing after a restart.
    """

    def __init__(
        self, store: Store, loaded: Loaded, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._clock = clock
        self.addrman = AddrMan(loaded.secret)
        self.bans = BanList()
        for peer in loaded.peers:
            if not self.addrman.restore(peer):
                loaded.skipped += 1
        now = clock()
        for ban in loaded.bans:
            if ban.until > now:
                self.bans.restore(ban)
        #: Rows of the file that made no sense and were dropped at load.
        self.skipped = loaded.skipped
        self._dirty_peers: set[bytes] = set()
        self._dirty_bans: set[bytes] = set()
        self._lock = anyio.Lock()
        self._changed = anyio.Event()
        self._closed = False

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str] | None, *, clock: Callable[[], float] = time.time
    ) -> PeerBook:
        """Open (or create) the book at ``path`` (None: in memory only), in a worker thread.
        A corrupt file is kept aside and a locked one left alone (see :mod:`.store`)."""

        store, loaded = await anyio.to_thread.run_sync(open_store, path)
        return cls(store, loaded, clock)

    # -- state ------------------------------------------------------------------------------

    @property
    def path(self) -> Path | None:
        """The file written to; None when kept in memory (by choice, or because the file
        could not be used this run)."""
        return self._store.path

    @property
    def recovered_from(self) -> Path | None:
        """Where an unreadable book file was moved aside at open, if one was."""
        return self._store.recovered_from

    @property
    def dirty(self) -> bool:
        """Changes are waiting for :meth:`flush`."""
        return bool(self._dirty_peers or self._dirty_bans)

    def now(self) -> float:
        return self._clock()

    def __len__(self) -> int:
        return len(self.addrman)

    def get(self, public_key: bytes) -> KnownPeer | None:
        return self.addrman.get(public_key)

    async def wait_changed(self) -> None:
        """Return after the next change (for a flushing loop)."""
        await self._changed.wait()

    def _touch(self, peers: Iterable[bytes] = (), bans: Iterable[bytes] = ()) -> None:
        before = len(self._dirty_peers) + len(self._dirty_bans)
        self._dirty_peers.update(peers)
        self._dirty_bans.update(bans)
        if len(self._dirty_peers) + len(self._dirty_bans) == before:
            return
        self._changed.set()
        self._changed = anyio.Event()

    # -- peers ------------------------------------------------------------------------------

    def add(
        self,
        public_key: bytes,
        host: str,
        port: int,
        *,
        source: str | None = None,
        topic: bytes | None = None,
    ) -> None:
        """We heard of a peer at ``host:port`` (from ``source``'s address; None: from the
        peer itself, as a DHT record that the storing node observed)."""
        if self.bans.is_banned(public_key, self.now()):
            return
        now = self.now()
        self._touch(self.addrman.add(public_key, host, port, now=now, source=source, topic=topic))

    def good(self, public_key: bytes) -> None:
        """A dial to this known peer gave a connection."""
        self._touch(self.addrman.good(public_key, now=self.now()))

    def failed(self, public_key: bytes) -> None:
        """A dial to this known peer failed."""
        self._touch(self.addrman.attempt(public_key, now=self.now(), ok=False))

    def candidates(
        self, *, limit: int = 8, topic: bytes | None = None, exclude: set[bytes] | None = None
    ) -> list[KnownPeer]:
        """The peers to dial first (see :meth:`.addrman.AddrMan.candidates`), bans skipped."""
        now = self.now()
        skip = set(exclude or ())
        skip.update(b.public_key for b in self.bans.bans() if b.until > now)
        return self.addrman.candidates(now=now, limit=limit, topic=topic, exclude=skip)

    # -- bans -------------------------------------------------------------------------------

    def ban(
        self,
        public_key: bytes,
        *,
        duration: float = DEFAULT_BAN_DURATION,
        reason: str = "",
        extend: bool = True,
    ) -> Ban:
        """Ban a peer for ``duration`` seconds (24 h by default), across restarts."""
        key = check_public_key(public_key)
        ban, dropped = self.bans.ban(
            key, now=self.now(), duration=duration, reason=reason, extend=extend
        )
        assert ban is not None
        self._touch(self.addrman.forget(key), [key, *dropped])
        return ban

    def unban(self, public_key: bytes) -> bool:
        if self.bans.unban(public_key):
            self._touch(bans=[public_key])
            return True
        return False

    def is_banned(self, public_key: bytes) -> bool:
        return self.bans.is_banned(public_key, self.now())

    def expire_bans(self) -> list[bytes]:
        """Drop the bans that ran out; returns their keys."""
        gone = self.bans.expire(self.now())
        self._touch(bans=gone)
        return gone

    # -- persistence --------------------------------------------------------------------------

    async def flush(self) -> bool:
        """Write the pending changes in a worker thread. False (changes kept for next time,
        a warning logged) when the file refused them."""
        async with self._lock:
            if not self.dirty:
                return True
            peer_keys, ban_keys = self._dirty_peers, self._dirty_bans
            self._dirty_peers, self._dirty_bans = set(), set()
            peers = [p for k in peer_keys if (p := self.addrman.get(k)) is not None]
            gone_peers = [k for k in peer_keys if k not in self.addrman]
            bans = [b for k in ban_keys if (b := self.bans.get(k)) is not None]
            gone_bans = [k for k in ban_keys if self.bans.get(k) is None]
            snapshot = [_copy(p) for p in peers]
            try:
                await anyio.to_thread.run_sync(
                    self._store.save, snapshot, gone_peers, bans, gone_bans
                )
            except sqlite3.Error as exc:
                logger.warning("peer book %s: write failed (%s); retrying later", self.path, exc)
                self._dirty_peers |= peer_keys
                self._dirty_bans |= ban_keys
                return False
            return True

    async def aclose(self) -> None:
        """Flush and close the file. Idempotent."""
        if self._closed:
            return
        with anyio.CancelScope(shield=True):
            await self.flush()
            self._closed = True
            async with self._lock:
                await anyio.to_thread.run_sync(self._store.close)

    def __repr__(self) -> str:
        where = self.path or "memory"
        return f"<PeerBook {where} peers={len(self.addrman)} bans={len(self.bans)}>"


def _copy(peer: KnownPeer) -> KnownPeer:
    """A copy for the writer thread: the loop may change the original meanwhile."""
    return KnownPeer(
        peer.public_key,
        peer.host,
        peer.port,
        peer.source_group,
        list(peer.topics),
        peer.first_seen,
        peer.last_seen,
        peer.last_try,
        peer.last_success,
        peer.successes,
        peer.failures,
        peer.table,
        peer.bucket,
        peer.position,
    )
