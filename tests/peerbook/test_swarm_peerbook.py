"""A swarm with a peer book: redialling after a restart before discovery answers, bans that
outlive the swarm, per-peer statistics."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from p2pswarm import Connection, PeerInfo, Swarm, topic
from p2pswarm.peerbook import PeerBook
from p2pswarm.peerbook.addrman import TRIED
from p2pswarm.testing import FakeClock, create_testnet, wait_until

from ..swarm.helpers import BACKOFFS

pytestmark = pytest.mark.anyio
ROOM = topic("peer-book room")


async def test_restart_redials_known_peers_before_discovery_answers(tmp_path: Path) -> None:
    path = tmp_path / "peers.db"
    async with (
        create_testnet(3) as net,
        create_testnet(3) as empty,
        Swarm(bootstrap=net.bootstrap, backoffs=BACKOFFS, jitter=0) as server,
    ):
        await server.join(ROOM, client=False).flushed()
        key = server.key_pair.public_key
        async with Swarm(bootstrap=net.bootstrap, peer_book=path) as client:
            client.join(ROOM, server=False)
            book = client.peer_book
            assert book is not None and book.path == path
            # The book hears of the connection through the swarm's handlers.
            await wait_until(lambda: _tried(book, key), client)
            entry = book.get(key)
            assert entry is not None and ROOM in entry.topics
        # Restarted on a DHT where nobody announced the room: only the book knows.
        async with Swarm(bootstrap=empty.bootstrap, peer_book=path) as again:
            again.join(ROOM, server=False)
            await wait_until(lambda: len(again.connections) == 1, again)
            conn = next(iter(again.connections))
            assert conn.remote_public_key == key
            stats = again.stats.peers[key]
            assert stats.connections == 1
            book = again.peer_book
            assert book is not None
            await wait_until(lambda: _successes(book, key) == 2, again)


def _tried(book: PeerBook, key: bytes) -> bool:
    entry = book.get(key)
    return entry is not None and entry.table == TRIED


def _successes(book: PeerBook, key: bytes) -> int:
    entry = book.get(key)
    return 0 if entry is None else entry.successes


async def test_bans_outlive_the_swarm_and_expire(tmp_path: Path) -> None:
    path = tmp_path / "peers.db"
    async with create_testnet(3) as net, Swarm(bootstrap=net.bootstrap) as server:
        await server.join(ROOM, client=False).flushed()
        key = server.key_pair.public_key
        async with Swarm(bootstrap=net.bootstrap, peer_book=path) as client:
            client.join(ROOM, server=False)
            await wait_until(lambda: len(client.connections) == 1, client)
            client.peers[key].ban()
            assert client.peer_book is not None and client.peer_book.is_banned(key)
        clock = FakeClock(time.time())
        book = await PeerBook.open(path, clock=clock)
        try:
            async with Swarm(bootstrap=net.bootstrap, peer_book=book) as again:
                assert again.peers[key].banned  # applied before any discovery
                again.join(ROOM, server=False)
                await again.flush()
                assert not again.connections
                clock.advance(24 * 3600 + 1)
                assert again._book is not None
                assert again._book.lift_expired() == [key]
                assert key not in again.peers or not again.peers[key].banned
                await again.status(ROOM).refresh()  # type: ignore[union-attr]
                await wait_until(lambda: len(again.connections) == 1, again)
        finally:
            await book.aclose()


async def test_per_peer_byte_counters_add_up_over_connections() -> None:
    async with (
        create_testnet(3) as net,
        Swarm(bootstrap=net.bootstrap) as a,
        Swarm(bootstrap=net.bootstrap, backoffs=BACKOFFS, jitter=0) as b,
    ):
        got = anyio.Event()

        @a.on_connection
        async def echo(conn: Connection, info: PeerInfo) -> None:
            async for data in conn:
                await conn.send(data)
                got.set()

        await a.join(ROOM, client=False).flushed()
        b.join(ROOM, server=False)
        await wait_until(lambda: len(b.connections) == 1, b)
        conn = next(iter(b.connections))
        await conn.send(b"x" * 1000)
        assert await conn.receive() == b"x" * 1000
        live = b.stats.peers[a.key_pair.public_key]
        assert live.bytes_sent >= 1000 and live.bytes_received >= 1000
        assert live.connections == 1
        await conn.aclose()
        await wait_until(lambda: len(b.connections) == 1 and conn not in b.connections, b)
        after = b.stats.peers[a.key_pair.public_key]
        assert after.connections == 2 and after.bytes_sent >= live.bytes_sent
