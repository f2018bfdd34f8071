"""Upstream firewall.js and swarm.js 22-23: firewall on both sides, one call, ban, ban event;
plus an async firewall that sees the address, and max_server_connections enforced."""

from __future__ import annotations

import pytest

from p2pswarm import topic
from p2pswarm.errors import PeerBannedError
from p2pswarm.swarm import Swarm
from p2pswarm.swarm.peer_info import PeerInfo

from .helpers import BACKOFFS, swarm_net

pytestmark = pytest.mark.anyio


class Firewall:
    """Rejects while ``reject`` is True; records every call."""

    def __init__(self, *, reject: bool = True) -> None:
        self.reject = reject
        self.calls: list[tuple[bytes, tuple[str, int]]] = []

    def __call__(self, public_key: bytes, address: tuple[str, int]) -> bool:
        self.calls.append((public_key, address))
        return self.reject


async def test_firewalled_server_gets_no_connection_and_bans_once() -> None:
    t = topic("firewall-server")
    firewall = Firewall()
    async with swarm_net(1, firewall=firewall) as ((server,), watch, boot):
        bans: list[tuple[PeerInfo, Exception]] = []
        server.on_ban(lambda info, err: bans.append((info, err)))
        async with Swarm(bootstrap=boot, backoffs=BACKOFFS, jitter=0) as client:
            watch.add(client)
            await server.join(t, client=False).flushed()
            await client.join(t, server=False).flushed()
            key = server.key_pair.public_key
            # The client retries until its budget runs out; the server is asked only once.
            await watch.wait(lambda: key not in client.peers and client.connecting == 0)
            assert client.stats.client_attempted > 1
        assert watch.count(server) == 0
        assert len(firewall.calls) == 1
        assert firewall.calls[0][0] == client.key_pair.public_key
        assert firewall.calls[0][1][0] == "127.0.0.1"
        assert server.stats.banned_peers == 1
        ((info, error),) = bans
        assert info.public_key == client.key_pair.public_key and info.banned
        assert isinstance(error, PeerBannedError) and str(error) == "Peer is firewalled"


async def test_firewalled_client_never_dials_the_server_twice() -> None:
    t = topic("firewall-client")
    firewall = Firewall()
    async with (
        swarm_net(1) as ((server,), watch, boot),
        Swarm(bootstrap=boot, firewall=firewall) as client,
    ):
        watch.add(client)
        await server.join(t, client=False).flushed()
        session = client.join(t, server=False)
        await session.flushed()
        await client.flush()
        await session.refresh()
        await client.flush()
        assert watch.count(client) == 0 and watch.count(server) == 0
        assert [key for key, _ in firewall.calls] == [server.key_pair.public_key]
        assert firewall.calls[0][1] == ("127.0.0.1", server.port)
        assert client.peers[server.key_pair.public_key].banned


async def test_firewall_ban_holds_both_ways_after_the_firewall_relents() -> None:
    t = topic("firewall-ban-holds")
    firewall = Firewall()
    async with (
        swarm_net(2) as ((a, b), watch, boot),
        Swarm(bootstrap=boot, firewall=firewall) as guarded,
    ):
        watch.add(guarded)
        await a.join(t).flushed()
        await guarded.join(t).flushed()
        await guarded.flush()
        firewall.reject = False
        # Now b joins: the guarded swarm accepts b, but a stays banned in both directions.
        await b.join(t).flushed()
        await guarded.status(t).refresh()  # type: ignore[union-attr]
        await guarded.flush()
        await a.status(t).refresh()  # type: ignore[union-attr]
        await a.flush()
        await watch.wait(lambda: b.key_pair.public_key in watch.remote_keys(guarded))
        assert a.key_pair.public_key not in watch.remote_keys(guarded)
        assert guarded.key_pair.public_key not in watch.remote_keys(a)
        assert guarded.stats.banned_peers == 1


async def test_async_firewall_sees_the_remote_address() -> None:
    t = topic("firewall-async")
    seen: list[tuple[bytes, tuple[str, int]]] = []

    async def firewall(public_key: bytes, address: tuple[str, int]) -> bool:
        seen.append((public_key, address))
        return address[0] != "127.0.0.1"  # admit loopback only

    async with swarm_net(2, firewall=firewall) as ((server, client), watch, _):
        await server.join(t, client=False).flushed()
        await client.join(t, server=False).flushed()
        await watch.wait(lambda: watch.count(server) == 1 and watch.count(client) == 1)
        server_conn, _ = watch.last(server)
        assert (client.key_pair.public_key, server_conn.remote_address) in seen
        assert (server.key_pair.public_key, ("127.0.0.1", server.port)) in seen


async def test_ban_blocks_incoming_handshakes() -> None:
    t = topic("ban-incoming")
    async with swarm_net(2) as ((server, client), watch, _):
        await server.join(t, client=False).flushed()
        await client.join(t, server=False).flushed()
        await watch.wait(lambda: watch.count(server) == 1)
        _, info = watch.last(server)
        info.ban(True)
        assert len(server.connections) == 1  # a ban does not close the open stream
        conn, _ = watch.last(server)
        await conn.aclose()
        key = server.key_pair.public_key
        await watch.wait(lambda: key not in client.peers and client.connecting == 0)
        assert watch.count(server) == 1
        assert client.stats.client_attempted > 1


async def test_max_server_connections_is_enforced() -> None:
    t = topic("max-server")
    async with swarm_net(3, max_server_connections=1) as ((server, c1, c2), watch, _):
        await server.join(t, client=False).flushed()
        await c1.join(t, server=False).flushed()
        await watch.wait(lambda: watch.count(server) == 1)
        await c2.join(t, server=False).flushed()
        await c2.flush()
        assert watch.count(server) == 1 and len(server.connections) == 1
        assert watch.count(c2) == 0
        # A slot frees up: c2's retry gets in.
        conn, _ = watch.last(server)
        await c1.leave(t)
        await conn.aclose()
        await watch.wait(lambda: len(server.connections) == 0)
        await c2.status(t).refresh()  # type: ignore[union-attr]
        await watch.wait(lambda: c2.key_pair.public_key in watch.remote_keys(server))


async def test_firewall_rejection_causes_no_retry_storm() -> None:
    t = topic("firewall-no-storm")
    firewall = Firewall()
    async with (
        swarm_net(2) as ((server, other), watch, boot),
        Swarm(bootstrap=boot, firewall=firewall, backoffs=BACKOFFS, jitter=0) as guarded,
    ):
        watch.add(guarded)
        await server.join(t, client=False).flushed()
        await other.join(t, client=False).flushed()
        session = guarded.join(t, server=False)
        await session.flushed()
        for _ in range(5):  # rediscovering firewalled peers dials nobody
            await session.refresh()
            await guarded.flush()
        assert len(firewall.calls) == 2  # once per peer, ever
        assert guarded.stats.client_attempted == 2
        assert guarded.stats.banned_peers == 2 and guarded.connections == set()


async def test_a_raising_firewall_refuses_without_banning_and_the_swarm_lives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    t = topic("firewall-raises")
    broken = [True]

    def firewall(public_key: bytes, address: tuple[str, int]) -> bool:
        if broken[0]:
            raise RuntimeError("firewall bug")
        return False

    async with swarm_net(2, firewall=firewall) as ((server, client), watch, _):
        with caplog.at_level("ERROR", logger="p2pswarm.swarm"):
            await server.join(t, client=False).flushed()
            await client.join(t, server=False).flushed()
            await client.flush()
        assert watch.count(client) == 0 and client.stats.banned_peers == 0
        assert any("firewall raised" in r.getMessage() for r in caplog.records)
        broken[0] = False
        await client.status(t).refresh()  # type: ignore[union-attr]
        await watch.wait(lambda: watch.count(client) == 1 and watch.count(server) == 1)
