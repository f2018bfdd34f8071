"""The book file: round trips, and never a crash on a corrupt, foreign or locked file."""

from __future__ import annotations

import logging
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from p2pswarm.peerbook import PeerBook
from p2pswarm.peerbook.addrman import TRIED
from p2pswarm.peerbook.bans import Ban
from p2pswarm.peerbook.store import open_store
from p2pswarm.testing import FakeClock

pytestmark = pytest.mark.anyio

K1, K2 = bytes([1]) * 32, bytes([2]) * 32
ROOM = b"r" * 32


async def _filled(path: Path, clock: FakeClock) -> None:
    book = await PeerBook.open(path, clock=clock)
    book.add(K1, "192.0.2.1", 4000, topic=ROOM)
    book.good(K1)
    book.add(K2, "198.51.100.2", 4001)
    book.ban(bytes([3]) * 32, reason="abuse")
    await book.aclose()


async def test_round_trip(tmp_path: Path) -> None:
    path, clock = tmp_path / "peers.db", FakeClock()
    await _filled(path, clock)
    book = await PeerBook.open(path, clock=clock)
    try:
        entry = book.get(K1)
        assert entry is not None and entry.table == TRIED and entry.topics == [ROOM]
        assert entry.host == "192.0.2.1" and entry.port == 4000 and entry.successes == 1
        assert book.get(K2) is not None and book.skipped == 0
        assert book.is_banned(bytes([3]) * 32)
        assert [p.public_key for p in book.candidates(topic=ROOM)] == [K1]
        clock.advance(24 * 3600)
        assert book.expire_bans() == [bytes([3]) * 32]
    finally:
        await book.aclose()
    reopened = await PeerBook.open(path, clock=clock)
    assert len(reopened.bans) == 0  # the expiry was saved
    await reopened.aclose()


async def test_in_memory_book(tmp_path: Path) -> None:
    book = await PeerBook.open(None)
    book.add(K1, "192.0.2.1", 4000)
    assert book.path is None and await book.flush()
    await book.aclose()
    await book.aclose()  # idempotent


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(b"not a database at all" * 100), id="garbage"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:1500]), id="truncated"),
        pytest.param(
            lambda p: p.write_bytes(p.read_bytes()[:100] + b"\xff" * 3000 + p.read_bytes()[3100:]),
            id="scribbled",
        ),
    ],
)
async def test_corrupt_file_is_kept_aside_and_a_fresh_book_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: object
) -> None:
    path = tmp_path / "peers.db"
    await _filled(path, FakeClock())
    damage(path)  # type: ignore[operator]
    broken = path.read_bytes()
    with caplog.at_level(logging.WARNING, logger="p2pswarm.peerbook"):
        book = await PeerBook.open(path)
    try:
        assert book.path == path and book.recovered_from is not None
        assert book.recovered_from.read_bytes() == broken
        assert "kept aside" in caplog.text
        assert len(book) == 0
        book.add(K1, "192.0.2.1", 4000)
        assert await book.flush()
    finally:
        await book.aclose()
    again = await PeerBook.open(path)
    assert again.get(K1) is not None
    await again.aclose()


async def test_garbage_is_always_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "peers.db"
    path.write_bytes(b"\x00garbage" * 1000)
    book = await PeerBook.open(path)
    await book.aclose()
    assert book.recovered_from == tmp_path / "peers.db.corrupt-1"
    assert book.recovered_from.read_bytes() == b"\x00garbage" * 1000
    path.write_bytes(b"more garbage" * 100)
    second = await PeerBook.open(path)
    await second.aclose()
    assert second.recovered_from == tmp_path / "peers.db.corrupt-2"


async def test_a_foreign_database_is_not_touched_in_place(tmp_path: Path) -> None:
    path = tmp_path / "peers.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE photos (id INTEGER)")
    db.commit()
    db.close()
    book = await PeerBook.open(path)
    await book.aclose()
    assert book.recovered_from is not None
    kept = sqlite3.connect(book.recovered_from)
    assert kept.execute("SELECT name FROM sqlite_master").fetchall() == [("photos",)]
    kept.close()


async def test_unknown_schema_version_and_odd_rows(tmp_path: Path) -> None:
    path = tmp_path / "peers.db"
    await _filled(path, FakeClock())
    db = sqlite3.connect(path)
    db.execute("UPDATE peers SET port = 70000 WHERE public_key = ?", (K2,))
    db.execute("INSERT INTO bans VALUES (x'00', 'soon', 3)")
    db.commit()
    db.close()
    book = await PeerBook.open(path)
    assert book.get(K2) is None and book.get(K1) is not None and book.skipped == 2
    await book.aclose()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = 99 WHERE name = 'schema'")
    db.commit()
    db.close()
    newer = await PeerBook.open(path)
    await newer.aclose()
    assert newer.recovered_from is not None and len(newer) == 0


async def test_locked_file_warns_keeps_the_file_and_uses_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "peers.db"
    await _filled(path, FakeClock())
    before = path.read_bytes()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING, logger="p2pswarm.peerbook"):
            book = await PeerBook.open(path)
        assert book.path is None and book.recovered_from is None and len(book) == 0
        assert "in memory" in caplog.text
        book.add(K1, "192.0.2.1", 4000)
        await book.aclose()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert path.read_bytes() == before


async def test_a_write_refused_by_a_lock_is_kept_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "peers.db"
    book = await PeerBook.open(path)
    try:
        book.add(K1, "192.0.2.1", 4000)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        with caplog.at_level(logging.WARNING, logger="p2pswarm.peerbook"):
            assert not await book.flush()
        assert "retrying later" in caplog.text and book.dirty
        other.execute("ROLLBACK")
        other.close()
        assert await book.flush() and not book.dirty
    finally:
        await book.aclose()
    again = await PeerBook.open(path)
    assert again.get(K1) is not None
    await again.aclose()


async def test_unopenable_path_uses_memory(tmp_path: Path) -> None:
    book = await PeerBook.open(tmp_path / "missing-dir" / "peers.db")
    assert book.path is None
    await book.aclose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=4096), keep=st.integers(min_value=0, max_value=8192))
def test_any_file_content_opens_as_a_book(data: bytes, keep: int) -> None:
    """Whatever the file holds (garbage, or a real book cut and overwritten anywhere),
    opening gives a usable book and never raises."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "peers.db"
        store, _ = open_store(path)
        store.save([], [], [Ban(K1, 1e12, "x")], [])
        store.close()
        original = path.read_bytes()
        path.write_bytes(original[:keep] + data + original[keep + len(data) :])
        store, loaded = open_store(path)
        try:
            store.save([], [], [], [K1])
            assert len(loaded.secret) == 32
        finally:
            store.close()
