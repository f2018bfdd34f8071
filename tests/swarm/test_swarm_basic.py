"""Upstream swarm.js scenarios 1-2, 6-8, 13-14, 19, 21: connecting, dedup, multiplexing."""

from __future__ import annotations

import socket
from functools import partial

import pytest

from p2pswarm import KeyPair, topic
from p2pswarm.connection import Connection
from p2pswarm.dht import DHTNode
from p2pswarm.errors import SwarmClosedError
from p2pswarm.networks.local_network import LocalDiscovery
from p2pswarm.swarm import Swarm
from p2pswarm.swarm.peer_info import PeerInfo
from p2pswarm.testing import create_testnet, wait_until

from .helpers import swarm_net

pytestmark = pytest.mark.anyio


async def test_one_server_one_client_connect() -> None:
    t = topic("basic-connect")
    async with swarm_net(2) as ((server, client), watch, _):
        await server.join(t, client=False).flushed()
        client.join(t, server=False)
        await client.flush()
        await watch.wait(lambda: watch.count(client) == 1 and watch.count(server) == 1)
        conn, info = watch.last(client)
        assert conn.is_initiator and info.client
        assert conn.remote_public_key == server.key_pair.public_key
        assert info.public_key == server.key_pair.public_key
        assert info.topics == [t]
        assert client.stats.client_opened == 1 and server.stats.server_opened == 1


def _one_connection_per_peer(swarm: Swarm) -> bool:
    keys = [conn.remote_public_key for conn in swarm.connections]
    return len(keys) == len(set(keys))


async def test_both_modes_give_exactly_one_connection_each() -> None:
    t = topic("basic-dedup")
    async with swarm_net(2) as (swarms, watch, _):
        a, b = swarms
        for swarm in swarms:
            swarm.on_update(partial(_assert_one_connection_per_peer, swarm))
        da, db = a.join(t), b.join(t)
        await da.flushed()
        await db.flushed()
        await a.flush()
        await b.flush()
        await watch.wait(lambda: watch.count(a) >= 1 and watch.count(b) >= 1)
        # Every discovered peer has been attempted on both sides: no late duplicate exists.
        await a.flush()
        await b.flush()
        assert watch.count(a) == 1 and watch.count(b) == 1
        assert len(a.connections) == 1 and len(b.connections) == 1
        (conn_a,) = a.connections
        (conn_b,) = b.connections
        assert conn_a.handshake_hash == conn_b.handshake_hash
        assert conn_a.is_initiator != conn_b.is_initiator


def _assert_one_connection_per_peer(swarm: Swarm) -> None:
    assert _one_connection_per_peer(swarm), "two connections to one peer were visible at once"


async def test_topic_multiplexing_one_connection_two_topics() -> None:
    t1, t2 = topic("mux-1"), topic("mux-2")
    async with swarm_net(2) as ((server, client), watch, _):
        await server.join(t1, client=False).flushed()
        await server.join(t2, client=False).flushed()
        await client.join(t1, server=False).flushed()
        await client.join(t2, server=False).flushed()
        await client.flush()
        await watch.wait(lambda: watch.count(client) == 1)
        await client.flush()
        assert watch.count(client) == 1 and len(client.connections) == 1
        info = client.peers[server.key_pair.public_key]
        assert sorted(info.topics) == sorted([t1, t2])


async def test_server_side_peer_info_knows_the_topic() -> None:
    t = topic("server-topics")
    async with swarm_net(2) as ((server, client), watch, _):
        await server.join(t, client=False).flushed()
        await client.join(t, server=False).flushed()
        await watch.wait(lambda: watch.count(server) == 1)
        conn, info = watch.last(server)
        assert info.server and not conn.is_initiator
        assert conn.remote_topics == (t,)
        assert info.topics == [t]


async def test_one_server_two_clients_report_the_right_keys() -> None:
    t = topic("one-server-two-clients")
    async with swarm_net(3) as ((server, c1, c2), watch, _):
        await server.join(t, client=False).flushed()
        await c1.join(t, server=False).flushed()
        await c2.join(t, server=False).flushed()
        await watch.wait(
            lambda: watch.count(server) == 2 and watch.count(c1) + watch.count(c2) == 2
        )
        assert sorted(watch.remote_keys(server)) == sorted(
            [c1.key_pair.public_key, c2.key_pair.public_key]
        )
        assert watch.remote_keys(c1) == [server.key_pair.public_key]
        assert watch.remote_keys(c2) == [server.key_pair.public_key]


async def test_rejoin_upgrades_the_mode_and_others_can_connect() -> None:
    t = topic("rejoin-upgrade")
    async with swarm_net(2) as ((a, b), watch, _):
        await a.join(t, server=False).flushed()
        b_session = b.join(t, server=False)
        await b_session.flushed()
        await b.flush()
        assert watch.count(b) == 0
        upgraded = a.join(t, server=True, client=False)
        await upgraded.flushed()
        status = a.status(t)
        assert status is not None and status.is_server and status.is_client
        await b_session.refresh()
        await watch.wait(lambda: watch.count(a) == 1 and watch.count(b) == 1)


async def test_topics_in_join_order() -> None:
    names = [topic(f"order-{i}") for i in range(4)]
    async with swarm_net(1) as ((swarm,), _, _):
        for t in names:
            swarm.join(t, client=False)
        swarm.join(names[1])  # a second session does not move the topic
        assert [d.topic for d in swarm.topics()] == names
        assert swarm.status(names[2]) is not None
        assert swarm.status(topic("never-joined")) is None


async def test_destroying_the_client_session_keeps_the_server_session() -> None:
    t = topic("two-sessions")
    async with swarm_net(3) as ((a, b, c), watch, _):
        client_session = a.join(t, server=False)
        server_session = a.join(t, client=False)
        await server_session.flushed()
        await client_session.destroy()
        status = a.status(t)
        assert status is not None and status.is_server and not status.is_client
        await b.join(t, server=False).flushed()
        await watch.wait(lambda: watch.count(a) == 1 and watch.count(b) == 1)
        await c.join(t, server=False).flushed()
        await watch.wait(lambda: watch.count(a) == 2 and watch.count(c) == 1)


async def test_destroying_all_sessions_empties_discovery() -> None:
    t = topic("all-sessions")
    async with swarm_net(1) as ((swarm,), _, _):
        sessions = [swarm.join(t), swarm.join(t, client=False), swarm.join(t, server=False)]
        await sessions[0].flushed()
        for session in sessions:
            await session.destroy()
        assert list(swarm.topics()) == [] and swarm.status(t) is None


async def test_no_error_handler_needed_when_a_peer_crashes() -> None:
    t = topic("peer-crash")
    async with swarm_net(3) as ((server, crasher, other), watch, _):
        failures: list[BaseException] = []

        @server.on_connection
        async def talk(conn: Connection, info: PeerInfo) -> None:
            try:
                await conn.send(b"hello")
                await conn.receive()
            except BaseException as exc:
                failures.append(exc)
                raise

        await server.join(t, client=False).flushed()
        await crasher.join(t, server=False).flushed()
        await watch.wait(lambda: watch.count(server) == 1 and watch.count(crasher) == 1)
        await crasher.aclose(force=True)  # the peer's process dies
        await watch.wait(lambda: len(server.connections) == 0 and failures != [])
        await other.join(t, server=False).flushed()
        await watch.wait(lambda: watch.count(other) == 1 and watch.count(server) == 2)
        assert not server.closed


async def test_port_option_and_dht_on_the_same_port() -> None:
    async with create_testnet(3) as testnet:
        async with Swarm(bootstrap=testnet.bootstrap) as first:
            port = first.port
        async with Swarm(bootstrap=testnet.bootstrap, port=port) as swarm:
            assert swarm.port == port
            dht = swarm.dht
            assert isinstance(dht, DHTNode) and dht.address == ("127.0.0.1", port)


async def test_bad_arguments_are_refused_clearly() -> None:
    with pytest.raises(TypeError, match="DiscoveryBackend"):
        Swarm(dht=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bootstrap"):
        Swarm(bootstrap="127.0.0.1:49737")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="4 numbers"):
        Swarm(bootstrap=[], backoffs=(1.0,))
    with pytest.raises(TypeError, match="max_peers"):
        Swarm(bootstrap=[], max_peers="3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key_pair or seed"):
        Swarm(bootstrap=[], key_pair=KeyPair.generate(), seed=bytes(32))
    assert Swarm(bootstrap=[], seed=bytes(32)).key_pair == KeyPair.from_seed(bytes(32))
    async with swarm_net(1) as ((swarm,), _, _):
        with pytest.raises(ValueError, match="32 bytes"):
            swarm.join(b"short")
        with pytest.raises(TypeError, match=r"p2pswarm\.topic"):
            swarm.join("a name")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="server=True or client=True"):
            swarm.join(topic("x"), server=False, client=False)
    with pytest.raises(SwarmClosedError):
        swarm.join(topic("x"))


async def test_a_failing_handler_closes_its_connection_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    t = topic("handler-raises")
    async with swarm_net(2, watch=False) as ((server, client), watch, _):
        watch.add(client)
        server.on_update(watch.notify)

        @server.on_connection
        async def buggy(conn: Connection, info: PeerInfo) -> None:
            raise ValueError("application bug")

        with caplog.at_level("ERROR", logger="p2pswarm.swarm"):
            await server.join(t, client=False).flushed()
            await client.join(t, server=False).flushed()
            await watch.wait(lambda: watch.count(client) >= 1 and not server.connections)
        assert any(
            r.levelname == "ERROR" and r.exc_info and "application bug" in str(r.exc_info[1])
            for r in caplog.records
        )
        assert not server.closed and server.stats.server_closed >= 1


async def test_sync_handler_only_observes_and_the_connection_stays_open() -> None:
    t = topic("sync-handler")
    async with swarm_net(2, watch=False) as ((server, client), watch, _):
        seen: list[tuple[Connection, PeerInfo]] = []
        server.on_connection(lambda conn, info: seen.append((conn, info)))
        watch.add(client)
        server.on_update(watch.notify)
        await server.join(t, client=False).flushed()
        await client.join(t, server=False).flushed()
        await watch.wait(lambda: len(seen) == 1 and watch.count(client) == 1)
        await server.flush()
        conn, _ = seen[0]
        assert not conn.closed and conn in server.connections
        await conn.send(b"still open")
        await watch.wait(lambda: watch.received[watch.last(client)[0]] == b"still open")


async def test_no_bootstrap_means_the_embedded_local_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    monkeypatch.setenv("P2PSWARM_LOCAL_PORT", str(free_port))  # a private local network
    monkeypatch.delenv("P2PSWARM_BOOTSTRAP", raising=False)
    t = topic("embedded-network")
    async with Swarm() as a, Swarm() as b:
        assert isinstance(a.dht, LocalDiscovery)
        a.join(t)
        b.join(t)
        await wait_until(lambda: len(a.connections) == 1 and len(b.connections) == 1, a, b)
