"""The peer book's file: one small sqlite3 database, and what to do when it is bad.

Blocking by nature (sqlite3 is a C library doing file I/O): :class:`~p2pswarm.peerbook.book.
PeerBook` calls these functions through ``anyio.to_thread``, one at a time. The data is
small (at most 1,280 peers and the bans), so every load reads it all and every save is one
transaction of the rows that changed.

A peer book is a cache, never a reason to fail: a file that is not a database, fails the
integrity check or has an unknown schema is renamed aside (``<name>.corrupt-<n>``, with its
journal) and a fresh book starts in its place; a file locked by another process, or one
that cannot be opened at all, is left alone and this run keeps its book in memory. Both
are logged as warnings on ``p2pswarm.peerbook``. Rows that do not make sense are skipped.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeGuard

from .addrman import MAX_TOPICS, KnownPeer
from .bans import Ban

__all__ = ("SCHEMA_VERSION", "Loaded", "Store", "open_store")

logger = logging.getLogger("p2pswarm.peerbook")

SCHEMA_VERSION: Final = 1
#: How long to wait for another process's lock before giving up (seconds).
LOCK_TIMEOUT: Final = 0.5

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS peers (
    public_key BLOB PRIMARY KEY, host TEXT NOT NULL, port INTEGER NOT NULL,
    source_group TEXT NOT NULL, topics BLOB NOT NULL,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL, last_try REAL NOT NULL,
    last_success REAL NOT NULL, successes INTEGER NOT NULL, failures INTEGER NOT NULL,
    tbl INTEGER NOT NULL, bucket INTEGER NOT NULL, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bans (
    public_key BLOB PRIMARY KEY, until REAL NOT NULL, reason TEXT NOT NULL);
"""

_PEER_COLUMNS: Final = (
    "public_key, host, port, source_group, topics, first_seen, last_seen, last_try, "
    "last_success, successes, failures, tbl, bucket, position"
)


class _BadBook(Exception):
    """The file opened but is not a peer book we can read."""


@dataclass(slots=True)
class Loaded:
    """What a book file held (``secret`` keys the bucket placement)."""

    secret: bytes
    peers: list[KnownPeer] = field(default_factory=list)
    bans: list[Ban] = field(default_factory=list)
    skipped: int = 0


class Store:
    """An open book file (or an in-memory stand-in when the file could not be used)."""

    def __init__(
        self, db: sqlite3.Connection, path: Path | None, recovered_from: Path | None
    ) -> None:
        self._db = db
        #: The file written to; None when this run keeps its book in memory only.
        self.path = path
        #: Where a corrupt file was moved to, when one was.
        self.recovered_from = recovered_from

    def load(self) -> Loaded:
        rows = self._db.execute("SELECT value FROM meta WHERE name = 'secret'").fetchall()
        secret = rows[0][0] if rows else b""
        if not isinstance(secret, bytes) or len(secret) != 32:
            secret = secrets.token_bytes(32)
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('secret', ?)", (secret,))
            self._db.execute("DELETE FROM peers")  # their slots were placed with another key
            self._db.commit()
        loaded = Loaded(secret)
        for row in self._db.execute(f"SELECT {_PEER_COLUMNS} FROM peers"):
            peer = _peer_from_row(row)
            if peer is None:
                loaded.skipped += 1
            else:
                loaded.peers.append(peer)
        for key, until, reason in self._db.execute("SELECT public_key, until, reason FROM bans"):
            if _is_key(key) and isinstance(until, int | float) and isinstance(reason, str):
                loaded.bans.append(Ban(key, float(until), reason))
            else:
                loaded.skipped += 1
        return loaded

    def save(
        self,
        peers: list[KnownPeer],
        gone_peers: list[bytes],
        bans: list[Ban],
        gone_bans: list[bytes],
    ) -> None:
        """Write the changes in one transaction; raises ``sqlite3.Error`` on failure (the
        caller keeps them and tries again later)."""
        with self._db:
            self._db.executemany(
                f"INSERT OR REPLACE INTO peers ({_PEER_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_row_from_peer(p) for p in peers],
            )
            self._db.executemany(
                "DELETE FROM peers WHERE public_key = ?", [(k,) for k in gone_peers]
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO bans VALUES (?, ?, ?)",
                [(b.public_key, b.until, b.reason) for b in bans],
            )
            self._db.executemany("DELETE FROM bans WHERE public_key = ?", [(k,) for k in gone_bans])

    def close(self) -> None:
        self._db.close()


def open_store(
    path: str | os.PathLike[str] | None, *, timeout: float = LOCK_TIMEOUT
) -> tuple[Store, Loaded]:
    """Open (or create) the book at ``path`` (None keeps it in memory) and read it. Never
    raises for a bad or busy file: see the module docstring."""
    if path is None:
        return _loaded(_memory(None))
    file = Path(path)
    try:
        return _loaded(Store(_open(file, timeout), file, None))
    except sqlite3.OperationalError as exc:
        if _is_lock_error(exc) or not _looks_corrupt(exc):
            logger.warning(
                "peer book %s cannot be used (%s): this run keeps its peer book in memory",
                file,
                exc,
            )
            return _loaded(_memory(None))
        reason: Exception = exc
    except (sqlite3.DatabaseError, _BadBook, ValueError) as exc:
        reason = exc
    aside = _move_aside(file)
    logger.warning(
        "peer book %s is unreadable (%s): kept aside as %s; starting a fresh book",
        file,
        reason,
        aside,
    )
    try:
        return _loaded(Store(_open(file, timeout), file, aside))
    except sqlite3.Error as exc:
        logger.warning("fresh peer book %s cannot be created (%s): in memory instead", file, exc)
        return _loaded(_memory(aside))


def _loaded(store: Store) -> tuple[Store, Loaded]:
    try:
        return store, store.load()
    except BaseException:
        store.close()
        raise


def _memory(recovered_from: Path | None) -> Store:
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.executescript(_SCHEMA)
    return Store(db, None, recovered_from)


def _open(file: Path, timeout: float) -> sqlite3.Connection:
    db = sqlite3.connect(file, timeout=timeout, check_same_thread=False)
    # A damaged text cell must not raise UnicodeDecodeError: it becomes a host that places
    # nowhere, and the row is skipped.
    db.text_factory = _text
    try:
        result = db.execute("PRAGMA quick_check").fetchall()
        if result != [("ok",)]:
            raise _BadBook(f"integrity check: {result[:3]!r}")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise _BadBook("not a peer book (no meta table)")
        db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        version = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchall()
        if not version:
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            db.commit()
        elif version[0][0] != SCHEMA_VERSION:
            raise _BadBook(f"unknown schema version {version[0][0]!r}")
        _check_columns(db)
    except BaseException:
        db.close()
        raise
    return db


def _check_columns(db: sqlite3.Connection) -> None:
    columns = [r[1] for r in db.execute("PRAGMA table_info(peers)")]
    if ", ".join(columns) != _PEER_COLUMNS:
        raise _BadBook("the peers table has other columns")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _is_lock_error(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _looks_corrupt(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "malformed" in text or "not a database" in text or "corrupt" in text


def _move_aside(file: Path) -> Path:
    n = 1
    while True:
        aside = file.with_name(f"{file.name}.corrupt-{n}")
        if not aside.exists():
            break
        n += 1
    os.replace(file, aside)
    for suffix in ("-journal", "-wal", "-shm"):
        extra = file.with_name(file.name + suffix)
        if extra.exists():
            os.replace(extra, aside.with_name(aside.name + suffix))
    return aside


def _is_key(value: object) -> TypeGuard[bytes]:
    return isinstance(value, bytes) and len(value) == 32


def _peer_from_row(row: tuple[object, ...]) -> KnownPeer | None:
    (key, host, port, source_group, topics, *times_and_counts) = row
    if not (_is_key(key) and isinstance(host, str) and isinstance(source_group, str)):
        return None
    if not (isinstance(port, int) and 0 < port < 65536 and isinstance(topics, bytes)):
        return None
    if len(topics) % 32 or len(topics) > 32 * MAX_TOPICS:
        return None
    first_seen, last_seen, last_try, last_success, successes, failures, tbl, bucket, pos = (
        times_and_counts
    )
    floats = [v for v in (first_seen, last_seen, last_try, last_success) if _is_number(v)]
    ints = [v for v in (successes, failures, tbl, bucket, pos) if isinstance(v, int) and v >= 0]
    if len(floats) != 4 or len(ints) != 5:
        return None
    return KnownPeer(
        key,
        host,
        port,
        source_group,
        [topics[i : i + 32] for i in range(0, len(topics), 32)],
        first_seen=float(floats[0]),
        last_seen=float(floats[1]),
        last_try=float(floats[2]),
        last_success=float(floats[3]),
        successes=ints[0],
        failures=ints[1],
        table=ints[2],
        bucket=ints[3],
        position=ints[4],
    )


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _row_from_peer(p: KnownPeer) -> tuple[object, ...]:
    return (
        p.public_key,
        p.host,
        p.port,
        p.source_group,
        b"".join(p.topics),
        p.first_seen,
        p.last_seen,
        p.last_try,
        p.last_success,
        p.successes,
        p.failures,
        p.table,
        p.bucket,
        p.position,
    )
