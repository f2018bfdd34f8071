"""No leaks: connect/disconnect and join/leave cycles leave the process as they found it.

Counted, not timed: open file descriptors, running tasks, and live ``PeerInfo`` and
``Connection`` objects are back at their baseline after the cycles (issue 15). The long
runs (1000 connection cycles, 100 join/leave cycles) are behind ``slow``; a short run of
each is in the default suite.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

from p2pswarm import topic
from p2pswarm.connection import Connection
from p2pswarm.keys import KeyPair
from p2pswarm.swarm import Swarm
from p2pswarm.swarm.peer_info import PeerInfo
from p2pswarm.testing import create_testnet, wait_until
from p2pswarm.transports.tcp import connect_tcp

from .helpers import BACKOFFS

pytestmark = pytest.mark.anyio


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def running_tasks() -> int:
    """Tasks alive in this event loop, on either backend."""
    try:
        import trio

        root = trio.lowlevel.current_root_task()
    except (ImportError, RuntimeError):
        import asyncio

        return len(asyncio.all_tasks())

    def count(task: trio.lowlevel.Task) -> int:
        return 1 + sum(count(child) for n in task.child_nurseries for child in n.child_tasks)

    return count(root)


def live(kind: type) -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is kind)


class Counts:
    """What must come back to baseline."""

    def __init__(self) -> None:
        self.fds = open_fds()
        self.tasks = running_tasks()
        self.peer_infos = live(PeerInfo)
        self.connections = live(Connection)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.fds, self.tasks, self.peer_infos, self.connections)


async def settle(done: Callable[[], bool]) -> None:
    """Let closing tasks run to their end: until ``done()`` (bounded by a deadline only
    as a safety net; the condition, not the time, is what is waited for)."""
    with anyio.fail_after(20):
        while not done():  # tasks ending have no event to wait on
            await anyio.lowlevel.checkpoint()


CONNECT_CYCLES = [20, pytest.param(1000, marks=pytest.mark.slow)]
JOIN_CYCLES = [5, pytest.param(100, marks=pytest.mark.slow)]


@pytest.mark.parametrize("cycles", CONNECT_CYCLES)
async def test_connect_disconnect_cycles_leave_nothing_behind(cycles: int) -> None:
    async with create_testnet(3) as testnet, Swarm(bootstrap=testnet.bootstrap) as server:
        opened = 0

        @server.on_connection
        async def hold(conn: Connection, info: PeerInfo) -> None:
            nonlocal opened
            opened += 1
            await conn.wait_closed()  # the client's close must be noticed without a reader

        await server.listen()

        async def cycle(i: int) -> None:
            # A new identity each time: a key whose last connection the server still
            # holds would be refused (one connection per peer).
            conn = await connect_tcp(
                "127.0.0.1",
                server.port,
                key_pair=KeyPair.from_seed(i.to_bytes(32, "big")),
                remote_public_key=server.key_pair.public_key,
            )
            if i % 2:
                await conn.send(b"hello")  # half of them with data the server never reads
            await conn.aclose()

        async def quiet() -> None:
            await wait_until(lambda: not server.connections, server, within=20)

        await cycle(0)
        await wait_until(lambda: opened == 1, server)
        await quiet()
        baseline = Counts()
        for i in range(1, cycles + 1):
            await cycle(i)
            if i % 50 == 0:
                await quiet()  # bounded by connections, not by time
        await wait_until(lambda: opened == cycles + 1, server, within=30)
        await quiet()
        await settle(lambda: running_tasks() <= baseline.tasks and open_fds() <= baseline.fds)
        after = Counts()
        assert after.as_tuple() == baseline.as_tuple()
        assert server.stats.server_opened == cycles + 1


@pytest.mark.parametrize("cycles", JOIN_CYCLES)
async def test_join_leave_cycles_leave_nothing_behind(cycles: int) -> None:
    room = topic("join-leave-cycles")
    async with (
        create_testnet(3) as testnet,
        Swarm(bootstrap=testnet.bootstrap, backoffs=BACKOFFS, jitter=0) as a,
        Swarm(bootstrap=testnet.bootstrap, backoffs=BACKOFFS, jitter=0) as b,
    ):
        for swarm in (a, b):
            swarm.on_connection(lambda conn, info: conn.wait_closed())
        await a.join(room).flushed()

        async def cycle() -> None:
            await b.join(room).flushed()
            await wait_until(lambda: len(a.connections) == 1 and len(b.connections) == 1, a, b)
            await b.leave(room, close=True)
            await wait_until(lambda: not a.connections and not b.connections, a, b)

        await cycle()
        await wait_until(lambda: a.connecting == 0 and b.connecting == 0, a, b)
        baseline = Counts()
        for _ in range(cycles):
            await cycle()
        await wait_until(lambda: a.connecting == 0 and b.connecting == 0, a, b)
        await settle(lambda: running_tasks() <= baseline.tasks and open_fds() <= baseline.fds)
        after = Counts()
        assert after.as_tuple() == baseline.as_tuple()
        assert b.stats.client_opened + b.stats.server_opened == cycles + 1
