"""Requests over real connections: results, remote errors, timeouts, floods, swarms."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from p2pswarm import topic
from p2pswarm.errors import (
    ChannelClosedError,
    NoPeersError,
    RateLimitedError,
    RemoteError,
    RequestTimeoutError,
)
from p2pswarm.rpc import RPC, RateLimiter, RPCPeer

from ..mux.helpers import mux_pair
from ..swarm.helpers import swarm_net

pytestmark = pytest.mark.anyio

TIMEOUT = 15


def late_reply_event(peer: RPCPeer) -> anyio.Event:
    """Set when ``peer`` drops its next late reply."""
    event = anyio.Event()
    message = peer.channel.messages[1]
    handler = message.on_message
    assert handler is not None

    def watch(value: Any, channel: Any) -> None:
        before = peer.late_replies
        handler(value, channel)
        if peer.late_replies > before:
            event.set()

    message.on_message = watch
    return event


@asynccontextmanager
async def rpc_pair(**server_options: Any) -> AsyncIterator[tuple[RPC, RPC, RPCPeer, RPCPeer]]:
    """(client rpc, server rpc, client's peer, server's peer) over one real connection."""
    async with mux_pair() as (a, b, tg, _):
        client, server = RPC(), RPC(**server_options)
        to_server = client.attach(a)
        to_client = server.attach(b)
        tg.start_soon(a.run)
        tg.start_soon(b.run)
        with anyio.fail_after(TIMEOUT):
            await client.wait_for_peers(1)
            await server.wait_for_peers(1)
        yield client, server, to_server, to_client


async def test_request_returns_the_handlers_result_sync_and_async() -> None:
    async with rpc_pair() as (client, server, to_server, _):
        server.handle("add", lambda p, peer: p["a"] + p["b"])

        @server.handle("who")
        async def who(payload: Any, peer: RPCPeer) -> str:
            await anyio.lowlevel.checkpoint()
            return peer.public_key.hex()

        with anyio.fail_after(TIMEOUT):
            assert await to_server.request("add", {"a": 2, "b": 3}) == 5
            assert await client.request("who") == to_server.mux.connection.public_key.hex()
            results = []

            async def one(i: int) -> None:
                results.append(await to_server.request("add", {"a": i, "b": i}))

            async with anyio.create_task_group() as tg:
                for i in range(50):
                    tg.start_soon(one, i)
        assert sorted(results) == [2 * i for i in range(50)]
        assert to_server.in_flight == 0 and to_server.stats.ok == 52


async def test_remote_errors_are_typed_and_the_connection_survives() -> None:
    async with rpc_pair() as (_, server, to_server, _p):

        def fails(payload: Any, peer: RPCPeer) -> None:
            raise ValueError("secret detail")

        def refuses(payload: Any, peer: RPCPeer) -> None:
            raise RemoteError("not-found", "no such key")

        server.handle("fails", fails)
        server.handle("refuses", refuses)
        server.handle("echo", lambda p, peer: p)
        with anyio.fail_after(TIMEOUT):
            with pytest.raises(RemoteError) as info:
                await to_server.request("fails")
            assert info.value.code == "internal" and "secret" not in str(info.value)
            with pytest.raises(RemoteError) as info:
                await to_server.request("refuses")
            assert (info.value.code, info.value.message) == ("not-found", "no such key")
            with pytest.raises(RemoteError) as info:
                await to_server.request("no-such-method")
            assert info.value.code == "unknown-method"
            assert await to_server.request("echo", [1, "x"]) == [1, "x"]


async def test_a_hanging_handler_times_out_on_both_sides_without_leaks() -> None:
    async with rpc_pair(handler_timeout=0.2) as (_, server, to_server, to_client):
        cancelled = anyio.Event()

        async def hangs(payload: Any, peer: RPCPeer) -> None:
            try:
                await anyio.sleep_forever()
            finally:
                cancelled.set()

        server.handle("hangs", hangs)
        late = late_reply_event(to_server)
        with anyio.fail_after(TIMEOUT):
            # The caller's own timeout first: its id is freed, the late error reply dropped.
            with pytest.raises(RequestTimeoutError):
                await to_server.request("hangs", timeout=0.05)
            assert to_server.in_flight == 0
            await cancelled.wait()  # the handler timeout cancelled it
            await late.wait()  # its error reply came late and was dropped
            # Then the handler timeout, reported as a remote error.
            with pytest.raises(RemoteError) as info:
                await to_server.request("hangs", timeout=5)
            assert info.value.code == "timeout"
        assert to_client._serving == 0


async def test_a_cancelled_request_frees_its_id() -> None:
    async with rpc_pair() as (_, server, to_server, _p):
        release = anyio.Event()

        async def slow(payload: Any, peer: RPCPeer) -> int:
            await release.wait()
            return 1

        server.handle("slow", slow)
        late = late_reply_event(to_server)
        with anyio.fail_after(TIMEOUT):
            with anyio.move_on_after(0.05):
                await to_server.request("slow")
            assert to_server.in_flight == 0
            release.set()
            await late.wait()
            assert await to_server.request("slow") == 1


async def test_a_request_flood_is_refused_then_the_peer_is_banned() -> None:
    limiter = RateLimiter(rate=1, burst=5, penalty=25, recovery=0)
    async with rpc_pair(limiter=limiter, clock=lambda: 0.0) as (_, server, to_server, _p):
        server.handle("m", lambda p, peer: "ok")
        with anyio.fail_after(TIMEOUT):
            for _ in range(5):
                assert await to_server.request("m") == "ok"
            for _ in range(3):
                with pytest.raises(RateLimitedError):
                    await to_server.request("m")
            # The fourth refusal brings the reputation to 0: banned, disconnected.
            with pytest.raises((ChannelClosedError, RequestTimeoutError)):
                await to_server.request("m", timeout=5)
            await to_server.channel.wait_closed()
        assert server.banned == [to_server.mux.connection.public_key]


async def test_requests_on_a_closed_channel_raise_closed() -> None:
    async with rpc_pair() as (_, server, to_server, to_client):
        release, started = anyio.Event(), anyio.Event()

        async def wait(payload: Any, peer: RPCPeer) -> None:
            started.set()
            await release.wait()

        server.handle("wait", wait)
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:

                async def waiting() -> None:
                    with pytest.raises(ChannelClosedError):
                        await to_server.request("wait")

                tg.start_soon(waiting)
                await started.wait()
                to_client.channel.close()
            with pytest.raises(NoPeersError):
                await server.request("x")


async def test_rpc_across_a_swarm_request_send_broadcast() -> None:
    async with swarm_net(4, watch=False) as (swarms, _, _b):
        rpcs = [RPC(s) for s in swarms]
        got: dict[int, list[Any]] = {i: [] for i in range(4)}
        five = anyio.Event()

        def note(i: int, payload: Any) -> None:
            got[i].append(payload)
            if sum(len(v) for v in got.values()) == 5:
                five.set()

        waiting = 0
        all_in = anyio.Event()

        async def gather(i: int) -> int:
            nonlocal waiting
            waiting += 1
            if waiting == 3:
                all_in.set()
            await all_in.wait()
            return i

        for i, rpc in enumerate(rpcs):
            rpc.handle("name", lambda p, peer, i=i: i)
            rpc.handle("gather", lambda p, peer, i=i: gather(i))
            rpc.handle("note", lambda p, peer, i=i: note(i, p))
        t = topic("rpc-test")
        server, *clients = swarms
        await server.join(t, client=False).flushed()
        for c in clients:
            c.join(t, server=False)
        with anyio.fail_after(TIMEOUT):
            for c in clients:
                await c.flush()
            await rpcs[0].wait_for_peers(3)
            for r in rpcs[1:]:
                await r.wait_for_peers(1)
            assert await rpcs[1].request("name") == 0
            # Three requests at once spread over the three equal peers (fewest in flight).
            answers: list[int] = []

            async def ask() -> None:
                answers.append(await rpcs[0].request("gather"))

            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(ask)
            assert sorted(answers) == [1, 2, 3]
            assert len(await rpcs[0].send("note", "two", n=2)) == 2
            assert len(await rpcs[0].broadcast("note", "all")) == 3
            await five.wait()
        assert sorted(x for v in got.values() for x in v) == ["all"] * 3 + ["two"] * 2
        assert got[0] == []


async def test_a_flooding_swarm_peer_is_banned_through_the_swarm() -> None:
    async with swarm_net(2, watch=False) as ((server, client), _, _b):
        limiter = RateLimiter(rate=1, burst=2, penalty=50, recovery=0)
        server_rpc = RPC(server, limiter=limiter, clock=lambda: 0.0)
        server_rpc.handle("m", lambda p, peer: "ok")
        client_rpc = RPC(client)
        banned = anyio.Event()
        server.on_ban(lambda info, error: banned.set())
        t = topic("rpc-flood")
        await server.join(t, client=False).flushed()
        client.join(t, server=False)
        with anyio.fail_after(TIMEOUT):
            await client.flush()
            await client_rpc.wait_for_peers(1)
            await server_rpc.wait_for_peers(1)
            for _ in range(2):
                assert await client_rpc.request("m") == "ok"
            with pytest.raises(RateLimitedError):
                await client_rpc.request("m")
            with pytest.raises((ChannelClosedError, RequestTimeoutError)):
                await client_rpc.request("m", timeout=5)
            await banned.wait()
        assert server.peers[client.key_pair.public_key].banned
        assert server_rpc.banned == [client.key_pair.public_key]


async def test_request_outcomes_are_counted_in_swarm_stats_peers() -> None:
    async with swarm_net(2, watch=False) as (swarms, _, _b):
        asker, answerer = RPC(swarms[0]), RPC(swarms[1])

        def fail(payload: Any, peer: RPCPeer) -> None:
            raise ValueError("no")

        answerer.handle("echo", lambda p, peer: p)
        answerer.handle("fail", fail)
        answerer.handle("hang", lambda p, peer: anyio.sleep_forever())
        t = topic("rpc-stats")
        await swarms[1].join(t, client=False).flushed()
        swarms[0].join(t, server=False)
        key = swarms[1].key_pair.public_key
        with anyio.fail_after(TIMEOUT):
            await swarms[0].flush()
            await asker.wait_for_peers(1)
            assert await asker.request("echo", 1) == 1
            assert await asker.request("echo", 2) == 2
            with pytest.raises(RemoteError):
                await asker.request("fail")  # answered: counts as ok, as in peer selection
            with pytest.raises(RequestTimeoutError):
                await asker.request("hang", timeout=0.05)
        stats = swarms[0].stats.peers[key]
        assert (stats.requests_ok, stats.requests_failed) == (3, 1)
        # the answering side made no requests of its own
        back = swarms[1].stats.peers[swarms[0].key_pair.public_key]
        assert (back.requests_ok, back.requests_failed) == (0, 0)


async def test_peer_changes_are_reported_and_a_failing_callback_is_contained() -> None:
    async with mux_pair() as (a, b, tg, _):
        client, server = RPC(), RPC()
        seen: list[int] = []
        closed = anyio.Event()

        def broken() -> None:
            raise RuntimeError("an app bug")

        def note() -> None:
            seen.append(len(server.peers))
            if seen[-1] == 0:
                closed.set()

        server.on_peers_changed(broken)
        server.on_peers_changed(note)
        client.attach(a)
        to_client = server.attach(b)
        tg.start_soon(a.run)
        tg.start_soon(b.run)
        with anyio.fail_after(TIMEOUT):
            await server.wait_for_peers(1)
            assert seen == [1]
            to_client.channel.close()
            await closed.wait()
        assert seen == [1, 0]
