"""Bogus handshakes, half-open sockets and slowloris peers at a listening swarm: each is cut
(by the pending-handshake cap or the handshake timeout), no decoder error escapes as an
unexpected exception, and honest peers still connect while it goes on.

The default suite runs 200 bogus handshakes and 100 half-open sockets; the ``slow`` version
1000 of each. Waits are on events; ``fail_after`` is only a safety bound.
"""

from __future__ import annotations

import logging
import random
from contextlib import AsyncExitStack
from dataclasses import dataclass

import anyio
import pytest

from p2pswarm.connection import Connection
from p2pswarm.swarm import Swarm
from p2pswarm.swarm.peer_info import PeerInfo
from p2pswarm.testing import create_testnet
from tests.swarm.helpers import BACKOFFS

from .attackers import Tally, bogus_handshake, half_open, slowloris

pytestmark = pytest.mark.anyio

#: Safety bound for each wait (never reached when things work).
BOUND = 60.0


@dataclass
class FloodResult:
    bogus: int
    half_open: int
    cut: int
    refused_at_connect: int
    seconds: float
    honest_connected: int


async def run_flood(
    *, bogus: int, half_opens: int, honest: int, handshake_timeout: float, parallel: int
) -> FloodResult:
    rng = random.Random(f"handshake flood {bogus} {half_opens}")
    tally = Tally(bogus + half_opens)
    limiter = anyio.CapacityLimiter(parallel)
    options = {"backoffs": BACKOFFS, "jitter": 0}
    async with (
        create_testnet(3) as net,
        Swarm(bootstrap=net.bootstrap, handshake_timeout=handshake_timeout, **options) as server,
        AsyncExitStack() as stack,
    ):
        await server.listen()
        port = server.port
        connected: dict[bytes, anyio.Event] = {}

        async def attack() -> None:
            async def one(index: int) -> None:
                async with limiter:
                    if index < bogus:
                        await bogus_handshake(port, random.Random(rng.random()), tally)
                    else:
                        await half_open(port, tally, eof=index % 2 == 0)

            async with anyio.create_task_group() as tg:
                for index in range(bogus + half_opens):
                    tg.start_soon(one, index)

        clients = [
            await stack.enter_async_context(Swarm(bootstrap=net.bootstrap, **options))
            for _ in range(honest)
        ]
        for client in clients:
            event = connected[client.key_pair.public_key] = anyio.Event()

            def seen(conn: Connection, peer: PeerInfo, event: anyio.Event = event) -> None:
                event.set()

            client.on_connection(seen)
        started = anyio.current_time()
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as tg:
                tg.start_soon(attack)
                for client in clients:
                    client.join_peer(server.key_pair.public_key)
                for event in connected.values():
                    await event.wait()
                await tally.closed.wait()
        seconds = anyio.current_time() - started
        assert {conn.remote_public_key for conn in server.connections} == set(connected)
        return FloodResult(
            bogus, half_opens, tally.cut, tally.refused_at_connect, seconds, len(connected)
        )


def no_unexpected_errors(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert bad == [], [r.getMessage() for r in bad]


async def test_bogus_handshakes_and_half_open_sockets_while_honest_peers_connect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    result = await run_flood(
        bogus=200, half_opens=100, honest=3, handshake_timeout=1.0, parallel=100
    )
    assert result.cut + result.refused_at_connect == 300
    assert result.honest_connected == 3
    no_unexpected_errors(caplog)


@pytest.mark.slow
async def test_1000_bogus_handshakes_and_1000_half_open_sockets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    result = await run_flood(
        bogus=1000, half_opens=1000, honest=5, handshake_timeout=2.0, parallel=300
    )
    assert result.cut + result.refused_at_connect == 2000
    assert result.honest_connected == 5
    no_unexpected_errors(caplog)


async def slowloris_run(count: int, interval: float, handshake_timeout: float) -> list[int]:
    """``count`` slowloris peers at a swarm, then an honest peer: the trickles are cut with
    bytes of their budget left, and the honest peer gets in."""
    budget = 34  # one byte short of the whole first message: the server never answers
    async with (
        create_testnet(3) as net,
        Swarm(bootstrap=net.bootstrap, handshake_timeout=handshake_timeout) as server,
        Swarm(bootstrap=net.bootstrap, backoffs=BACKOFFS, jitter=0) as client,
    ):
        await server.listen()
        sent: list[int] = []
        connected = anyio.Event()
        client.on_connection(lambda conn, peer: connected.set())
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as tg:

                async def trickle() -> None:
                    sent.append(await slowloris(server.port, interval, budget))

                for _ in range(count):
                    tg.start_soon(trickle)
                client.join_peer(server.key_pair.public_key)
                await connected.wait()
        assert [conn.remote_public_key for conn in server.connections] == [
            client.key_pair.public_key
        ]
        return sent


async def test_a_slowloris_is_cut_by_the_handshake_timeout() -> None:
    # 34 bytes at one per 0.2 s would take 6.8 s: the 0.5 s handshake timeout cuts it first.
    sent = await slowloris_run(5, 0.2, 0.5)
    assert len(sent) == 5 and all(n < 34 for n in sent), sent


@pytest.mark.slow
async def test_fifty_one_byte_a_second_peers_are_cut() -> None:
    sent = await slowloris_run(50, 1.0, 3.0)
    assert len(sent) == 50 and all(n < 34 for n in sent), sent
