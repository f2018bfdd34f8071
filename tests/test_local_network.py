"""The embedded local network: who becomes the bootstrap, takeover, foreign ports, records.

Every test runs on its own free port range (never 49737), so tests run next to a user's
real local network and in parallel with each other.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import anyio.abc
import pytest

from p2pswarm import DHTError, KeyPair, topic
from p2pswarm.networks.local_network import (
    DEFAULT_LOCAL_PORT,
    FALLBACK_PORTS,
    LocalDiscovery,
    LocalNetwork,
    PortState,
    bootstrap_from_env,
    local_port_from_env,
    parse_bootstrap,
    probe_port,
)
from tests.cli.ports import free_base_port

pytestmark = pytest.mark.anyio

TIMEOUT = 15.0


@pytest.fixture
def base_port() -> int:
    return free_base_port()


@pytest.fixture
def foreign_udp(base_port: int) -> Iterator[socket.socket]:
    """A UDP socket on the base port that never answers: not a p2pswarm node."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", base_port))
    yield sock
    sock.close()


class Background:
    """Runs an async context manager in its own task (entered and exited there, as anyio
    requires), so the test can stop it while others keep running."""

    def __init__(self, tg: anyio.abc.TaskGroup) -> None:
        self._tg = tg
        self._stops: list[anyio.Event] = []

    async def enter(self, cm: Any) -> Callable[[], Awaitable[None]]:
        stop, stopped = anyio.Event(), anyio.Event()

        async def run(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            try:
                async with cm:
                    task_status.started()
                    await stop.wait()
            finally:
                stopped.set()

        await self._tg.start(run)
        self._stops.append(stop)

        async def close() -> None:
            stop.set()
            await stopped.wait()

        return close

    def stop_all(self) -> None:
        for stop in self._stops:
            stop.set()


async def _lookup_keys(backend: LocalDiscovery, name: bytes) -> set[bytes]:
    async with backend.lookup(name) as found:
        return {record.public_key async for record in found}


# -- configuration --------------------------------------------------------------------------


def test_parse_bootstrap_accepts_hosts_ipv4_and_ipv6() -> None:
    assert parse_bootstrap("a.example:1, 10.0.0.1:49737,[::1]:7") == [
        ("a.example", 1),
        ("10.0.0.1", 49737),
        ("::1", 7),
    ]


@pytest.mark.parametrize(
    "text", ["", " , ", "host", "host:", ":80", "host:0", "host:70000", "::1:5", "[::1]5", "h:x"]
)
def test_parse_bootstrap_rejects_bad_entries(text: str) -> None:
    with pytest.raises(ValueError, match="bootstrap"):
        parse_bootstrap(text)


def test_environment_configures_port_and_bootstrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("P2PSWARM_LOCAL_PORT", raising=False)
    monkeypatch.delenv("P2PSWARM_BOOTSTRAP", raising=False)
    assert local_port_from_env() == DEFAULT_LOCAL_PORT
    assert bootstrap_from_env() is None
    monkeypatch.setenv("P2PSWARM_LOCAL_PORT", "40000")
    monkeypatch.setenv("P2PSWARM_BOOTSTRAP", "127.0.0.1:5000")
    assert local_port_from_env() == 40000
    assert bootstrap_from_env() == [("127.0.0.1", 5000)]
    monkeypatch.setenv("P2PSWARM_LOCAL_PORT", "banana")
    with pytest.raises(ValueError, match="P2PSWARM_LOCAL_PORT"):
        local_port_from_env()
    monkeypatch.setenv("P2PSWARM_BOOTSTRAP", "nowhere")
    with pytest.raises(ValueError, match="P2PSWARM_BOOTSTRAP"):
        bootstrap_from_env()


# -- roles ----------------------------------------------------------------------------------


async def test_first_process_hosts_and_later_ones_join(base_port: int) -> None:
    with anyio.fail_after(TIMEOUT):
        async with LocalNetwork(port=base_port) as first, LocalNetwork(port=base_port) as second:
            assert first.is_bootstrap and not second.is_bootstrap
            assert first.bootstrap == second.bootstrap == [("127.0.0.1", base_port)]
            assert first.bootstrap_node is not None
            assert second.bootstrap_id == first.bootstrap_node.node_id
            assert first.bootstrap_node.address == ("127.0.0.1", base_port)


async def test_simultaneous_starts_agree_on_one_bootstrap(base_port: int) -> None:
    networks = [LocalNetwork(port=base_port) for _ in range(4)]
    entered = 0
    all_entered, release = anyio.Event(), anyio.Event()

    async def run(network: LocalNetwork) -> None:
        nonlocal entered
        async with network:
            entered += 1
            if entered == len(networks):
                all_entered.set()
            await release.wait()

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            for network in networks:
                tg.start_soon(run, network)
            await all_entered.wait()
            try:
                assert sum(n.is_bootstrap for n in networks) == 1
                assert {n.port for n in networks} == {base_port}
                assert len({n.bootstrap_id for n in networks}) == 1
            finally:
                release.set()


async def test_member_takes_over_when_the_bootstrap_exits(base_port: int) -> None:
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            background = Background(tg)
            host = LocalNetwork(port=base_port)
            stop_host = await background.enter(host)
            async with LocalNetwork(port=base_port, check_interval=0.05) as member:
                assert host.is_bootstrap and not member.is_bootstrap
                old_id = member.bootstrap_id
                await stop_host()
                await member.wait_changed()
                assert member.is_bootstrap
                assert member.port == base_port
                assert member.bootstrap_id != old_id
                assert member.generation == 1


async def test_one_of_several_members_takes_over_the_rest_follow(base_port: int) -> None:
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            background = Background(tg)
            stop_host = await background.enter(LocalNetwork(port=base_port))
            members = [LocalNetwork(port=base_port, check_interval=0.05) for _ in range(3)]
            for member in members:
                await background.enter(member)
            try:
                await stop_host()
                for member in members:
                    if member.generation == 0:
                        await member.wait_changed()
                assert sum(m.is_bootstrap for m in members) == 1
                new_host = next(m for m in members if m.is_bootstrap)
                assert new_host.bootstrap_node is not None
                assert {m.bootstrap_id for m in members} == {new_host.bootstrap_node.node_id}
                assert {m.port for m in members} == {base_port}
            finally:
                background.stop_all()


# -- a port held by something else ----------------------------------------------------------


async def test_foreign_port_falls_back_to_the_next_and_says_so(
    base_port: int, foreign_udp: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="p2pswarm.local_network")
    with anyio.fail_after(TIMEOUT):
        async with LocalNetwork(port=base_port) as first, LocalNetwork(port=base_port) as second:
            assert first.is_bootstrap
            assert first.port == second.port == base_port + 1
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"127.0.0.1:{base_port} is in use" in m for m in messages)
    assert any(f"runs on 127.0.0.1:{base_port + 1} instead" in m for m in messages)


async def test_a_network_on_a_fallback_port_is_joined_once_the_base_port_frees(
    base_port: int,
) -> None:
    foreign = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    foreign.bind(("127.0.0.1", base_port))
    with anyio.fail_after(TIMEOUT):
        async with LocalNetwork(port=base_port) as first:
            assert first.port == base_port + 1
            foreign.close()
            async with LocalNetwork(port=base_port) as late:
                assert not late.is_bootstrap
                assert late.port == base_port + 1


async def test_every_port_foreign_is_a_clear_error(base_port: int) -> None:
    holders = []
    try:
        for port in range(base_port, base_port + FALLBACK_PORTS):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", port))
            holders.append(sock)
        with anyio.fail_after(TIMEOUT), pytest.raises(DHTError, match="no usable port"):
            async with LocalNetwork(port=base_port):
                pass
    finally:
        for sock in holders:
            sock.close()


async def test_probe_port_tells_free_p2pswarm_and_foreign(
    base_port: int, foreign_udp: socket.socket
) -> None:
    with anyio.fail_after(TIMEOUT):
        assert (await probe_port(base_port)).kind == PortState.FOREIGN
        assert (await probe_port(base_port + 2)).kind == PortState.FREE
        async with LocalNetwork(port=base_port) as network:
            state = await probe_port(base_port + 1)
            assert network.bootstrap_node is not None
            assert state.kind == PortState.P2PSWARM
            assert state.node_id == network.bootstrap_node.node_id


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="port"):
        LocalNetwork(port=0)
    with pytest.raises(ValueError, match="check_interval"):
        LocalNetwork(port=30000, check_interval=0)


# -- discovery on it ------------------------------------------------------------------------


async def test_records_are_found_across_members(base_port: int) -> None:
    name = topic("local-network-records")
    key = KeyPair.generate()
    with anyio.fail_after(TIMEOUT):
        async with LocalDiscovery(port=base_port) as a, LocalDiscovery(port=base_port) as b:
            await a.announce(name, key, 4242)
            assert await _lookup_keys(b, name) == {key.public_key}
            await a.announce_self(key, 4242)
            found = await b.find_peer(key.public_key)
            assert found is not None and found.direct_addresses[0].port == 4242
            await a.unannounce(name, key)
            assert await _lookup_keys(b, name) == set()


async def test_records_are_reannounced_after_a_takeover(base_port: int) -> None:
    """The bootstrap's process exits with every record; the members put theirs back."""
    name = topic("local-network-takeover")
    key = KeyPair.generate()
    reannounced = anyio.Event()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            background = Background(tg)
            stop_host = await background.enter(LocalDiscovery(port=base_port))
            async with LocalDiscovery(port=base_port, check_interval=0.05) as member:
                member.on_network_change(reannounced.set)
                await member.announce(name, key, 5151)
                await member.announce_self(key, 5151)
                await stop_host()
                # The change callbacks run after the re-announce.
                await reannounced.wait()
                assert member.network.is_bootstrap
                async with LocalDiscovery(port=base_port) as newcomer:
                    assert await _lookup_keys(newcomer, name) == {key.public_key}
                    assert await newcomer.find_peer(key.public_key) is not None


async def test_default_backend_follows_the_environment(
    base_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contextlib import AsyncExitStack

    from p2pswarm.dht import DHTNode
    from p2pswarm.networks.local_network import open_default_backend

    monkeypatch.setenv("P2PSWARM_LOCAL_PORT", str(base_port))
    monkeypatch.delenv("P2PSWARM_BOOTSTRAP", raising=False)
    with anyio.fail_after(TIMEOUT):
        async with AsyncExitStack() as stack:
            backend = await open_default_backend(stack)
            assert isinstance(backend, LocalDiscovery)
            assert backend.network.port == base_port
            assert backend.node.address[0] == "127.0.0.1"  # loopback only
            hosted = backend.network.bootstrap_node
            assert hosted is not None and hosted.address == ("127.0.0.1", base_port)
            monkeypatch.setenv("P2PSWARM_BOOTSTRAP", f"127.0.0.1:{base_port}")
            node = await open_default_backend(stack)
            assert isinstance(node, DHTNode) and not isinstance(node, LocalDiscovery)
            assert len(node.routing_table) == 1  # it bootstrapped from the local node


async def test_swarms_keep_connections_and_find_newcomers_across_a_takeover(
    base_port: int,
) -> None:
    """The bootstrap's process exits: the existing connection is untouched, and a swarm
    that joins afterwards still finds the old ones (their records were re-announced)."""
    from p2pswarm.connection import Connection
    from p2pswarm.swarm import Swarm
    from p2pswarm.swarm.peer_info import PeerInfo

    room = topic("takeover room")
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            background = Background(tg)
            stop_host = await background.enter(LocalDiscovery(port=base_port))
            a_dht = LocalDiscovery(port=base_port, check_interval=0.05)
            b_dht = LocalDiscovery(port=base_port, check_interval=0.05)
            await background.enter(a_dht)
            await background.enter(b_dht)
            a, b = Swarm(dht=a_dht), Swarm(dht=b_dht)
            await background.enter(a)
            await background.enter(b)
            a_dht.on_network_change(a.network_changed)
            b_dht.on_network_change(b.network_changed)
            links: dict[bytes, Connection] = {}
            linked = anyio.Event()

            def on_connection(conn: Connection, info: PeerInfo) -> None:
                links[conn.remote_public_key + conn.public_key] = conn
                if len(links) >= 2:
                    linked.set()

            a.on_connection(on_connection)
            b.on_connection(on_connection)
            a.join(room)
            b.join(room)
            await linked.wait()
            a_to_b = links[b.key_pair.public_key + a.key_pair.public_key]
            b_to_a = links[a.key_pair.public_key + b.key_pair.public_key]

            await stop_host()
            await a_dht.network.wait_changed()
            if b_dht.network.generation == 0:
                await b_dht.network.wait_changed()
            await a_to_b.send(b"still here")
            assert await b_to_a.receive() == b"still here"

            c_dht = LocalDiscovery(port=base_port)
            await background.enter(c_dht)
            c = Swarm(dht=c_dht)
            await background.enter(c)
            met = anyio.Event()
            c.on_connection(lambda conn, info: met.set())
            c.join(room)
            await met.wait()
            background.stop_all()
