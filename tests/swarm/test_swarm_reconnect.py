"""Upstream scenarios: reconnects, retry budget, bans, dedup after a reconnect, PeerInfo GC,
explicit peers (peer-join.js) and suspend/resume (suspend.js)."""

from __future__ import annotations

import anyio
import pytest

from p2pswarm import topic
from p2pswarm.connection import Connection
from p2pswarm.dht import DHTNode
from p2pswarm.swarm import Swarm
from p2pswarm.swarm.peer_info import PeerInfo

from .helpers import swarm_net

pytestmark = pytest.mark.anyio


def _idle(swarm: Swarm, key: bytes) -> bool:
    """Nothing left to do for ``key``: no connection, dial, queue entry or retry."""
    peer = swarm.peers.get(key)
    return (
        key not in {c.remote_public_key for c in swarm.connections}
        and swarm.connecting == 0
        and (peer is None or not (peer.queued or peer.waiting))
    )


async def test_server_destroys_the_stream_and_both_sides_reconnect() -> None:
    t = topic("reconnect-server")
    async with swarm_net(2) as ((server, client), watch, _):
        await server.join(t, client=False).flushed()
        await client.join(t, server=False).flushed()
        await watch.wait(lambda: watch.count(server) == 1 and watch.count(client) == 1)
        conn, _ = watch.last(server)
        await conn.aclose()
        await watch.wait(lambda: watch.count(server) == 2 and watch.count(client) == 2)
        assert len(server.connections) == 1 and len(client.connections) == 1


async def test_client_destroys_the_stream_and_both_sides_reconnect() -> None:
    t = topic("reconnect-client")
    async with swarm_net(2) as ((server, client), watch, _):
        await server.join(t, client=False).flushed()
        await client.join(t, server=False).flushed()
        await watch.wait(lambda: watch.count(client) == 1)
        conn, _ = watch.last(client)
        await conn.aclose()
        await watch.wait(lambda: watch.count(server) == 2 and watch.count(client) == 2)


async def test_retries_run_out_when_every_stream_is_destroyed() -> None:
    t = topic("retries-run-out")
    async with swarm_net(2, watch=False) as ((server, client), watch, _):
        watch.add(server)
        seen: list[Connection] = []

        @client.on_connection
        async def destroy(conn: Connection, info: PeerInfo) -> None:
            seen.append(conn)
            await conn.aclose()

        client.on_update(watch.notify)
        await server.join(t, client=False).flushed()
        await client.join(t, server=False).flushed()
        key = server.key_pair.public_key
        await watch.wait(lambda: seen != [] and _idle(client, key) and key not in client.peers)
        # Proven peer: retried at S, M, L after closes 1-3, given up after the 4th.
        assert 1 < len(seen) < 5
        assert client.stats.client_opened == len(seen)


async def test_banned_peer_does_not_reconnect() -> None:
    t = topic("ban-no-reconnect")
    async with swarm_net(2, watch=False) as ((server, client), watch, _):
        watch.add(server)
        seen: list[Connection] = []

        @client.on_connection
        async def ban_and_close(conn: Connection, info: PeerInfo) -> None:
            seen.append(conn)
            info.ban(True)
            await conn.aclose()

        client.on_update(watch.notify)
        await server.join(t, client=False).flushed()
        session = client.join(t, server=False)
        await session.flushed()
        key = server.key_pair.public_key
        await watch.wait(lambda: seen != [] and _idle(client, key))
        await session.refresh()  # rediscovering a banned peer does not dial it
        await client.flush()
        assert len(seen) == 1
        assert client.peers[key].banned  # kept, so the ban holds
        assert client.stats.banned_peers == 1


async def test_dedup_after_a_destroyed_client_stream_and_data_flows() -> None:
    t = topic("dedup-after-destroy")
    async with swarm_net(2) as ((a, b), watch, _):
        a.join(t)
        b.join(t)
        await watch.wait(lambda: watch.count(a) == 1 and watch.count(b) == 1)
        first_a, _ = watch.last(a)
        (client_side,) = [c for c, _ in (watch.last(a), watch.last(b)) if c.is_initiator]
        await first_a.send(b"before")
        await client_side.aclose()
        await watch.wait(lambda: watch.count(a) == 2 and watch.count(b) == 2)
        conn_a, _ = watch.last(a)
        conn_b, _ = watch.last(b)
        assert conn_a.handshake_hash == conn_b.handshake_hash
        await conn_a.send(b"ping")
        await conn_b.send(b"pong")
        await watch.wait(
            lambda: watch.received[conn_b] == b"ping" and watch.received[conn_a] == b"pong"
        )
        assert len(a.connections) == 1 and len(b.connections) == 1


async def test_peer_info_gc_on_the_server_side() -> None:
    t = topic("gc-server")
    async with swarm_net(2) as ((server, client), watch, _):
        await server.join(t, client=False).flushed()
        await client.join(t, server=False).flushed()
        await watch.wait(lambda: watch.count(server) == 1 and watch.count(client) == 1)
        await client.leave(t)
        conn, _ = watch.last(client)
        await conn.aclose()
        await watch.wait(lambda: len(server.peers) == 0 and len(client.peers) == 0)
        assert server.connections == set() and client.connections == set()


async def test_peer_info_gc_on_the_client_side_after_retries_run_out() -> None:
    t = topic("gc-client")
    async with swarm_net(2) as ((server, client), watch, _):
        await server.join(t, client=False).flushed()
        await client.join(t, server=False).flushed()
        await watch.wait(lambda: watch.count(client) == 1)
        key = server.key_pair.public_key
        await server.aclose(force=True)  # gone without unannouncing: redials fail
        await watch.wait(lambda: key not in client.peers and _idle(client, key))
        assert client.stats.client_attempted >= 2
        assert client.peers == {} and client.connections == set()


async def test_join_peer_connects_and_comes_back_after_both_ends_close() -> None:
    async with swarm_net(2) as ((a, b), watch, _):
        await b.listen()
        a.join_peer(b.key_pair.public_key)
        assert [p.public_key for p in a.explicit_peers] == [b.key_pair.public_key]
        await watch.wait(lambda: watch.count(a) == 1 and watch.count(b) == 1)
        conn_a, info = watch.last(a)
        conn_b, _ = watch.last(b)
        assert info.explicit and conn_a.is_initiator
        await conn_a.aclose()
        await conn_b.aclose()
        await watch.wait(lambda: watch.count(a) == 2 and watch.count(b) == 2)


async def test_join_peer_self_is_a_noop() -> None:
    async with swarm_net(1) as ((swarm,), _, _):
        swarm.join_peer(swarm.key_pair.public_key)
        assert swarm.explicit_peers == set() and swarm.peers == {} and swarm.connecting == 0


async def test_leave_peer_keeps_the_connection_and_stops_reconnects() -> None:
    async with swarm_net(2) as ((a, b), watch, _):
        await b.listen()
        key = b.key_pair.public_key
        a.join_peer(key)
        await watch.wait(lambda: watch.count(a) == 1)
        a.leave_peer(key)
        assert a.explicit_peers == set() and len(a.connections) == 1
        conn, _ = watch.last(a)
        await conn.aclose()
        await watch.wait(lambda: _idle(a, key) and key not in a.peers)
        await a.flush()
        assert watch.count(a) == 1


async def test_no_leak_when_the_remote_closes_first_then_leave_peer() -> None:
    async with swarm_net(2) as ((a, b), watch, _):
        await b.listen()
        key = b.key_pair.public_key
        a.join_peer(key)
        await watch.wait(lambda: watch.count(b) == 1)
        conn, _ = watch.last(b)
        await conn.aclose()
        await watch.wait(lambda: len(a.connections) == 0 or watch.count(a) == 2)
        a.leave_peer(key)
        await watch.wait(lambda: len(a.connections) <= 1)
        for c in list(a.connections):
            await c.aclose()
        await watch.wait(lambda: a.peers == {} and a.connections == set())
        assert a.explicit_peers == set() and a.connecting == 0


async def test_suspend_and_resume_reconnect() -> None:
    t = topic("suspend-resume")
    async with swarm_net(2) as ((a, b), watch, _):
        a.join(t)
        await b.join(t).flushed()
        await watch.wait(lambda: watch.count(a) == 1 and watch.count(b) == 1)
        await a.suspend()
        assert a.suspended and a.connections == set()
        await watch.wait(lambda: len(b.connections) == 0)
        await a.resume()
        await watch.wait(lambda: watch.count(a) == 2 and watch.count(b) == 2)
        assert len(a.connections) == 1 and len(b.connections) == 1


async def test_network_change_refreshes_and_finds_a_late_server() -> None:
    t = topic("network-change")
    async with swarm_net(2) as ((client, late), watch, _):
        await client.join(t, server=False).flushed()
        await late.join(t, client=False).flushed()
        await client.flush()
        assert watch.count(client) == 0
        await client.network_changed()
        await watch.wait(lambda: watch.count(client) == 1)


async def test_keepalive_detects_a_silent_dead_peer() -> None:
    """A peer that stops answering (no FIN, no data) is dropped by the idle timeout."""
    t = topic("idle-timeout")
    async with (
        swarm_net(1, keepalive=0.05, idle_timeout=0.3) as ((server,), watch, boot),
        Swarm(bootstrap=boot, keepalive=None, idle_timeout=None) as mute,
    ):
        frozen = anyio.Event()

        @mute.on_connection
        async def freeze(conn: Connection, info: PeerInfo) -> None:
            await frozen.wait()  # never reads, never sends

        await server.join(t, client=False).flushed()
        await mute.join(t, server=False).flushed()
        await watch.wait(lambda: watch.count(server) == 1)
        await watch.wait(lambda: len(server.connections) == 0)
        conn, _ = watch.last(server)
        assert conn.closed
        frozen.set()


async def test_join_while_suspended_starts_on_resume() -> None:
    t = topic("join-while-suspended")
    async with swarm_net(2) as ((server, client), watch, _):
        await server.join(t, client=False).flushed()
        await client.suspend()
        session = client.join(t, server=False)
        status = client.status(t)
        assert status is not None and status.suspended
        await anyio.wait_all_tasks_blocked()  # its loop is now parked, suspended
        await client.resume()
        with anyio.fail_after(10):
            assert await session.flushed()
        await watch.wait(lambda: watch.count(client) == 1)


async def test_shared_dht_is_used_and_left_open() -> None:
    t = topic("shared-dht")
    async with swarm_net(1) as ((server,), watch, boot), DHTNode(bootstrap=boot) as node:
        async with Swarm(dht=node) as client:
            assert client.dht is node
            watch.add(client)
            await server.join(t, client=False).flushed()
            await client.join(t, server=False).flushed()
            await watch.wait(lambda: watch.count(client) == 1)
        assert not node.closed
        async with node.lookup(t) as found:
            assert [r.public_key async for r in found] == [server.key_pair.public_key]
