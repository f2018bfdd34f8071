"""Helpers for swarm integration tests: swarms on a testnet, and waiting without sleeping.

``Watch`` registers a reading handler on each swarm (so remote closes are noticed, as
an application's handler would) and records every connection. ``watch.wait(predicate)``
re-checks the predicate after every update or connection event of any watched swarm, with
``fail_after`` only as a safety bound.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import anyio.abc

from p2pswarm.connection import Connection
from p2pswarm.keys import KeyPair
from p2pswarm.peer_record import PeerRecord
from p2pswarm.swarm import Swarm
from p2pswarm.swarm.peer_info import PeerInfo
from p2pswarm.testing import create_testnet

#: Tiny retry delays (S, M, L, X seconds) and no jitter, as Hyperswarm's tests use.
BACKOFFS = (0.01, 0.02, 0.03, 0.04)
#: Safety bound for any single wait; tests normally finish far below it.
TIMEOUT = 15.0


class Watch:
    """Records connections of several swarms and wakes waiters on every change."""

    def __init__(self) -> None:
        self.connections: dict[Swarm, list[tuple[Connection, PeerInfo]]] = {}
        self.received: dict[Connection, bytearray] = {}
        self.ended: set[Connection] = set()
        self._changed = anyio.Event()

    def notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def add(self, swarm: Swarm, *, read: bool = True) -> Swarm:
        self.connections[swarm] = []

        async def on_connection(conn: Connection, info: PeerInfo) -> None:
            self.connections[swarm].append((conn, info))
            self.received[conn] = bytearray()
            self.notify()
            try:
                if read:
                    async for data in conn:
                        self.received[conn] += data
                        self.notify()
                else:
                    await conn.wait_closed()
            finally:
                self.ended.add(conn)
                self.notify()

        swarm.on_connection(on_connection)
        swarm.on_update(self.notify)
        return swarm

    def count(self, swarm: Swarm) -> int:
        """How many connections ``swarm`` has handed to its handler so far."""
        return len(self.connections[swarm])

    def remote_keys(self, swarm: Swarm) -> list[bytes]:
        return [conn.remote_public_key for conn, _ in self.connections[swarm]]

    def last(self, swarm: Swarm) -> tuple[Connection, PeerInfo]:
        return self.connections[swarm][-1]

    async def wait(self, predicate: Callable[[], bool], bound: float = TIMEOUT) -> None:
        """Return once ``predicate()`` holds; re-checked after every event."""
        with anyio.fail_after(bound):
            while not predicate():
                await self._changed.wait()


@asynccontextmanager
async def swarm_net(
    n: int, *, nodes: int = 5, watch: bool = True, read: bool = True, **options: Any
) -> AsyncIterator[tuple[list[Swarm], Watch, list[tuple[str, int]]]]:
    """A testnet with ``n`` swarms using tiny back-offs; yields (swarms, watch, bootstrap)."""
    options.setdefault("backoffs", BACKOFFS)
    options.setdefault("jitter", 0)
    async with create_testnet(nodes) as testnet, AsyncExitStack() as stack:
        observer = Watch()
        swarms = []
        for _ in range(n):
            swarm = await stack.enter_async_context(Swarm(bootstrap=testnet.bootstrap, **options))
            if watch:
                observer.add(swarm, read=read)
            swarms.append(swarm)
        yield swarms, observer, testnet.bootstrap


class SilentDialer:
    """Reaches the peer over real TCP, then never finishes the handshake: a dial that stays
    in flight until cancelled."""

    def __init__(self) -> None:
        self.in_flight = anyio.Event()
        self.streams: list[anyio.abc.SocketStream] = []

    async def dial(
        self, record: PeerRecord, *, key_pair: KeyPair, topics: Sequence[bytes] = ()
    ) -> Connection:
        address = record.direct_addresses[0]
        stream = await anyio.connect_tcp(address.host, address.port)
        self.streams.append(stream)
        try:
            self.in_flight.set()
            await anyio.sleep_forever()
        finally:
            await stream.aclose()
        raise AssertionError("unreachable")
