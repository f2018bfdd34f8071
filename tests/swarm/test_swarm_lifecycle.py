"""Leaving a swarm: cancelled, raised through, closed early.

On asyncio, a cancellation unwinding through an exit stack that held the swarm's task group
once chained the ``CancelledError`` to itself, and the task never finished. Each test here
cancels or raises with the swarm busy (connections open, handlers running, dials in flight)
and waits for the holder to finish, with ``fail_after`` only as a safety bound.
"""

from __future__ import annotations

import anyio
import pytest

from p2pswarm import topic
from p2pswarm.connection import Connection
from p2pswarm.errors import SwarmClosedError
from p2pswarm.swarm import Swarm
from p2pswarm.swarm.peer_info import PeerInfo
from p2pswarm.testing import create_testnet

from .helpers import BACKOFFS, TIMEOUT, SilentDialer

pytestmark = pytest.mark.anyio


class _Boom(Exception):
    pass


def _no_self_cycle(exc: BaseException | None) -> None:
    """The ``__context__`` chain ends (the hang was a chain that looped)."""
    seen: set[int] = set()
    while exc is not None:
        assert id(exc) not in seen, "exception context cycle"
        seen.add(id(exc))
        exc = exc.__context__


class _Held:
    """Runs ``async with Swarm()`` in a task of its own until cancelled or told to raise."""

    def __init__(self, swarm: Swarm) -> None:
        self.swarm = swarm
        self.ready = anyio.Event()
        self.finished = anyio.Event()
        self.handlers_running = 0
        self.handler_started = anyio.Event()
        self.raise_now = anyio.Event()
        self.error: BaseException | None = None

    async def _handler(self, conn: Connection, peer: PeerInfo) -> None:
        self.handlers_running += 1
        self.handler_started.set()
        try:
            async for _ in conn:
                pass
            await anyio.sleep_forever()
        finally:
            self.handlers_running -= 1

    async def run(self, t: bytes, *, server: bool, client: bool) -> None:
        try:
            async with self.swarm as swarm:
                swarm.on_connection(self._handler)
                await swarm.join(t, server=server, client=client).flushed()
                self.ready.set()
                await self.raise_now.wait()
                raise _Boom("from the body")
        except BaseException as exc:
            self.error = exc
            _no_self_cycle(exc)
            raise
        finally:
            self.finished.set()


async def test_cancelling_a_task_holding_connected_swarms_finishes() -> None:
    t = topic("lifecycle-cancel-connected")
    async with create_testnet(3) as net:
        server = _Held(Swarm(bootstrap=net.bootstrap, backoffs=BACKOFFS, jitter=0))
        client = _Held(Swarm(bootstrap=net.bootstrap, backoffs=BACKOFFS, jitter=0))
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: server.run(t, server=True, client=False))
                await server.ready.wait()
                tg.start_soon(lambda: client.run(t, server=False, client=True))
                await client.handler_started.wait()
                await server.handler_started.wait()
                assert server.swarm.connections and client.swarm.connections
                tg.cancel_scope.cancel()
        assert server.finished.is_set() and client.finished.is_set()
        for held in (server, client):
            assert held.swarm.closed and not held.swarm.connections
            assert held.handlers_running == 0


async def test_cancelling_a_task_with_dials_in_flight_finishes() -> None:
    t = topic("lifecycle-cancel-dialling")
    dialer = SilentDialer()
    async with create_testnet(3) as net, Swarm(bootstrap=net.bootstrap) as server:
        await server.join(t, client=False).flushed()
        client = _Held(Swarm(bootstrap=net.bootstrap, dialer=dialer))
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: client.run(t, server=False, client=True))
                await dialer.in_flight.wait()
                assert client.swarm.connecting == 1
                tg.cancel_scope.cancel()
        assert client.finished.is_set() and client.swarm.closed
        assert client.swarm.connecting == 0


async def test_an_exception_in_the_body_propagates_unchanged() -> None:
    t = topic("lifecycle-raise")
    async with create_testnet(3) as net:
        server = _Held(Swarm(bootstrap=net.bootstrap, backoffs=BACKOFFS, jitter=0))
        client = _Held(Swarm(bootstrap=net.bootstrap, backoffs=BACKOFFS, jitter=0))
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: server.run(t, server=True, client=False))
                await server.ready.wait()

                async def raise_in_client() -> None:
                    with pytest.raises(_Boom) as info:
                        await client.run(t, server=False, client=True)
                    assert info.value is client.error
                    assert str(info.value) == "from the body"

                tg.start_soon(raise_in_client)
                await client.handler_started.wait()
                client.raise_now.set()
                await client.finished.wait()
                tg.cancel_scope.cancel()
        assert type(client.error) is _Boom
        assert client.swarm.closed and client.handlers_running == 0


async def test_aclose_inside_the_block_then_leaving_it() -> None:
    async with create_testnet(3) as net:
        with anyio.fail_after(TIMEOUT):
            async with Swarm(bootstrap=net.bootstrap) as swarm:
                swarm.join(topic("lifecycle-aclose"))
                await swarm.aclose()
                assert swarm.closed and not list(swarm.topics())
                with pytest.raises(SwarmClosedError):
                    swarm.join(topic("lifecycle-aclose"))
                await swarm.aclose()  # idempotent
            assert swarm.closed


async def test_aclose_of_a_swarm_never_entered() -> None:
    swarm = Swarm(bootstrap=[])
    await swarm.aclose()
    assert swarm.closed
    with pytest.raises(RuntimeError, match="entered once"):
        await swarm.__aenter__()
