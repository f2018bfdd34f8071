"""flush(), update events and stats (update.js, stats.js, swarm.js 9-10, 12), leave, and the
fixes beyond Hyperswarm: simultaneous joins, leave(close=True), max_peers/max_parallel."""

from __future__ import annotations

import anyio
import pytest

from p2pswarm import topic
from p2pswarm.swarm import Swarm

from .helpers import swarm_net

pytestmark = pytest.mark.anyio


async def test_flush_resolves_when_max_peers_is_reached() -> None:
    t = topic("flush-max-peers")
    async with swarm_net(2) as ((b, c), watch, boot):
        await b.join(t, client=False).flushed()
        await c.join(t, client=False).flushed()
        async with Swarm(bootstrap=boot, max_peers=1) as limited:
            watch.add(limited)
            await limited.join(t, server=False).flushed()
            with anyio.fail_after(10):
                assert await limited.flush()
            assert len(limited.connections) + limited.connecting <= 1
            await watch.wait(lambda: watch.count(limited) == 1)
            with anyio.fail_after(10):
                assert await limited.flush()
            assert watch.count(limited) == 1


async def test_flush_waits_until_every_discovered_peer_was_attempted() -> None:
    t = topic("flush-attempted")
    async with swarm_net(4) as ((dead, s1, s2, client), _watch, _):
        for server in (dead, s1, s2):
            await server.join(t, client=False).flushed()
        await dead.aclose(force=True)  # its record stays: a dial that fails
        await client.join(t, server=False).flushed()
        with anyio.fail_after(10):
            assert await client.flush()
        assert client.stats.client_attempted >= 3
        # The two live servers are connected (the client side may still await its handler).
        assert len(client.connections) == 2
        assert {c.remote_public_key for c in client.connections} == {
            s1.key_pair.public_key,
            s2.key_pair.public_key,
        }


async def test_flush_with_nothing_joined_returns_true_at_once() -> None:
    async with swarm_net(1) as ((swarm,), _, _):
        with anyio.fail_after(5):
            assert await swarm.flush()


async def test_update_events_show_connecting_0_1_0() -> None:
    t = topic("updates")
    async with swarm_net(2) as ((server, client), watch, _):
        connecting: list[int] = []
        client.on_update(lambda: connecting.append(client.connecting))
        await server.join(t, client=False).flushed()
        await client.join(t, server=False).flushed()
        await watch.wait(lambda: watch.count(client) == 1 and client.connecting == 0)
        steps = [n for i, n in enumerate(connecting) if i == 0 or connecting[i - 1] != n]
        assert steps == [0, 1, 0]
        assert client.stats.updates >= len(connecting)
        # Both ends close cleanly after an end-of-stream.
        conn, _ = watch.last(client)
        await conn.send_eof()
        await watch.wait(lambda: len(client.connections) == 0 and len(server.connections) == 0)


async def test_async_update_callbacks_and_failing_callbacks_do_not_hurt() -> None:
    t = topic("update-callbacks")
    async with swarm_net(2) as ((server, client), watch, _):
        calls: list[int] = []

        @client.on_update
        async def async_update() -> None:
            calls.append(client.connecting)

        @client.on_update
        def broken() -> None:
            raise RuntimeError("application bug")

        await server.join(t, client=False).flushed()
        await client.join(t, server=False).flushed()
        await watch.wait(lambda: watch.count(client) == 1 and calls != [])
        assert not client.closed


async def test_stats_count_opens_closes_and_attempts() -> None:
    t = topic("stats")
    async with swarm_net(2) as ((server, client), watch, _):
        await server.join(t, client=False).flushed()
        await client.join(t, server=False).flushed()
        await watch.wait(lambda: watch.count(client) == 1 and watch.count(server) == 1)
        assert (client.stats.client_attempted, client.stats.client_opened) == (1, 1)
        assert (server.stats.server_opened, server.stats.server_closed) == (1, 0)
        await client.leave(t)
        conn, _ = watch.last(client)
        await conn.aclose()
        await watch.wait(lambda: server.stats.server_closed == 1)
        assert client.stats.client_closed == 1
        assert client.stats.server_opened == 0 and server.stats.client_attempted == 0


async def test_after_the_server_leaves_a_new_client_finds_nobody() -> None:
    t = topic("server-leaves")
    async with swarm_net(3) as ((server, old, new), watch, _):
        await server.join(t, client=False).flushed()
        await old.join(t, server=False).flushed()
        await watch.wait(lambda: watch.count(server) == 1 and watch.count(old) == 1)
        await server.leave(t)
        await new.join(t, server=False).flushed()
        await new.flush()
        assert watch.count(new) == 0
        assert len(old.connections) == 1 and len(server.connections) == 1


async def test_refresh_finds_a_late_server() -> None:
    t = topic("refresh-late")
    async with swarm_net(3) as ((client, s1, s2), watch, _):
        await s1.join(t, client=False).flushed()
        session = client.join(t, server=False)
        await session.flushed()
        await watch.wait(lambda: watch.count(client) == 1)
        await s2.join(t, client=False).flushed()
        await client.flush()
        assert watch.count(client) == 1
        await session.refresh()
        await watch.wait(lambda: watch.count(client) == 2)


async def test_simultaneous_join_of_a_fresh_topic_connects_at_once() -> None:
    """Hyperswarm: 0 connections for 10 minutes. Here: connected by the first flush."""
    t = topic("simultaneous")
    async with swarm_net(4) as (swarms, watch, _):
        sessions = [s.join(t) for s in swarms]
        for session in sessions:
            await session.flushed()
        for swarm in swarms:
            await swarm.flush()
        await watch.wait(lambda: all(watch.count(s) == 3 for s in swarms))
        for swarm in swarms:
            assert len(swarm.connections) == 3


async def test_leave_with_close_closes_only_what_that_topic_justified() -> None:
    only, other, served = topic("close-only"), topic("close-other"), topic("close-served")
    async with swarm_net(4) as ((hub, a, b, c), watch, _):
        await a.join(only, client=False).flushed()  # hub finds a under `only` alone
        await b.join(only, client=False).flushed()  # and b under `only` and `other`
        await b.join(other, client=False).flushed()
        await hub.join(served, client=False).flushed()
        await c.join(served, server=False).flushed()  # c dials hub: known from its hello
        await hub.join(only, server=False).flushed()
        await hub.join(other, server=False).flushed()
        await watch.wait(lambda: watch.count(hub) == 3)
        assert sorted(hub.peers[b.key_pair.public_key].topics) == sorted([only, other])
        await hub.leave(only, close=True)
        await watch.wait(lambda: len(hub.connections) == 2 and len(a.connections) == 0)
        await hub.leave(served, close=True)
        await watch.wait(lambda: len(hub.connections) == 1 and len(c.connections) == 0)
        (kept,) = hub.connections
        assert kept.remote_public_key == b.key_pair.public_key
        await hub.leave(other)  # close=False: the connection stays
        assert len(hub.connections) == 1


async def test_max_parallel_bounds_dials_in_flight() -> None:
    t = topic("max-parallel")
    async with swarm_net(6, max_parallel=1) as ((client, *servers), watch, _):
        for server in servers:
            await server.join(t, client=False).flushed()
        peak = [0]
        client.on_update(lambda: peak.__setitem__(0, max(peak[0], client.connecting)))
        await client.join(t, server=False).flushed()
        await client.flush()
        await watch.wait(lambda: watch.count(client) == 5)
        assert peak[0] == 1


async def test_max_client_connections_caps_outgoing() -> None:
    t = topic("max-client")
    async with swarm_net(4, max_client_connections=2) as ((client, *servers), watch, _):
        for server in servers:
            await server.join(t, client=False).flushed()
        await client.join(t, server=False).flushed()
        assert await client.flush()
        await watch.wait(lambda: watch.count(client) == 2)
        assert len(client.connections) == 2
