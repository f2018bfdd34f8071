"""A watched Connection notices a gone peer whether or not the application reads it.

Real TCP on 127.0.0.1, on asyncio and trio, over the library's own socket stream (the
lean one on asyncio) and over anyio's. The application side here only waits
(``wait_closed()``) or reads late, while ``run_keepalive()`` watches, as the swarm and a
listener's ``serve`` run it.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest
from anyio.abc import SocketAttribute

from p2pswarm.connection import READ_AHEAD, Connection
from p2pswarm.errors import IdleTimeoutError

from .test_connection import connected_pair, receive_exactly

pytestmark = pytest.mark.anyio

STREAMS = pytest.mark.parametrize("anyio_streams", [False, True], ids=["own-stream", "anyio"])
#: Safety bound only: every wait below ends on an event long before it.
BOUND = 10.0


async def drain(conn: Connection) -> bytes:
    """Everything left to read, up to the end of stream."""
    data = bytearray()
    while True:
        try:
            data += await conn.receive()
        except anyio.EndOfStream:
            return bytes(data)


async def until(predicate: Callable[[], bool]) -> None:
    """Let other tasks run until ``predicate()`` holds (a state only a task switch can
    change; bounded by ``BOUND``)."""
    with anyio.fail_after(BOUND):
        while not predicate():
            await anyio.lowlevel.checkpoint()


def reset_on_close(conn: Connection) -> None:
    """Make ``conn``'s socket close with a TCP reset instead of a FIN (a crashed host's
    answer, or a process killed with unread bytes)."""
    raw: socket.socket = conn.extra(SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@STREAMS
async def test_a_peer_that_closes_is_noticed_without_a_reader(anyio_streams: bool) -> None:
    # Keep-alives far apart: the close is found by the watchdog's own two probes.
    async with connected_pair(server={"keepalive": 60.0}, anyio_streams=anyio_streams) as (
        initiator,
        responder,
    ):
        async with anyio.create_task_group() as group:
            group.start_soon(responder.run_keepalive)
            await initiator.send(b"last words")
            await initiator.aclose()
            with anyio.fail_after(BOUND):
                await responder.wait_closed()
        assert responder.closed
        # What arrived before the close is still there, then the peer's end.
        assert await drain(responder) == b"last words"


@STREAMS
async def test_a_peer_that_resets_is_noticed_at_once(anyio_streams: bool) -> None:
    # No keep-alives at all: the reset alone must close it.
    async with connected_pair(
        server={"keepalive": None, "idle_timeout": None}, anyio_streams=anyio_streams
    ) as (initiator, responder):
        async with anyio.create_task_group() as group:
            group.start_soon(responder.run_keepalive)
            await initiator.send(b"before the reset")
            await until(lambda: responder.bytes_read > 0)  # read ahead by the watchdog
            reset_on_close(initiator)
            await initiator.aclose()
            with anyio.fail_after(BOUND):
                await responder.wait_closed()
        assert await responder.receive() == b"before the reset"
        with pytest.raises(anyio.BrokenResourceError):
            await responder.receive()
        with pytest.raises(anyio.BrokenResourceError):
            await responder.send(b"x")


@STREAMS
async def test_a_frozen_peer_times_out_without_a_reader(anyio_streams: bool) -> None:
    async with connected_pair(
        client={"keepalive": None},  # alive but silent: as a frozen process looks
        server={"keepalive": 0.02, "idle_timeout": 0.1},
        anyio_streams=anyio_streams,
    ) as (initiator, responder):
        async with anyio.create_task_group() as group:
            group.start_soon(responder.run_keepalive)
            await initiator.send(b"then silence")
            with anyio.fail_after(BOUND):
                await responder.wait_closed()
        assert await responder.receive() == b"then silence"
        with pytest.raises(IdleTimeoutError):
            await responder.receive()
        with pytest.raises(anyio.BrokenResourceError):
            await responder.receive()


@STREAMS
async def test_a_half_closed_peer_keeps_the_connection(anyio_streams: bool) -> None:
    """A peer that only ended its side is alive: nothing closes until this side ends too."""
    async with connected_pair(server={"keepalive": 0.01}, anyio_streams=anyio_streams) as (
        initiator,
        responder,
    ):
        async with anyio.create_task_group() as group:
            group.start_soon(responder.run_keepalive)
            await initiator.send(b"question")
            await initiator.send_eof()
            # Keep-alives (the probe included) reach a live peer and change nothing.
            await until(lambda: responder.bytes_read > 0)  # read ahead by the watchdog
            for _ in range(5):
                await responder.send(b"partial answer ")
                assert await initiator.receive() == b"partial answer "
            assert not responder.closed
            assert await drain(responder) == b"question"
            await responder.send(b"the end")
            await responder.send_eof()
            with anyio.fail_after(BOUND):
                await responder.wait_closed()  # both directions ended: a full close
        assert await drain(initiator) == b"the end"
        with pytest.raises(anyio.EndOfStream):
            await responder.receive()


@STREAMS
async def test_read_ahead_is_bounded_and_loses_nothing(anyio_streams: bool) -> None:
    big = bytes(range(256)) * (4 * READ_AHEAD // 256)
    async with (
        connected_pair(server={"keepalive": 0.01}, anyio_streams=anyio_streams) as (
            initiator,
            responder,
        ),
        anyio.create_task_group() as group,
    ):
        group.start_soon(responder.run_keepalive)
        group.start_soon(initiator.send, big)
        await until(lambda: responder.bytes_read >= READ_AHEAD)
        # The watchdog stopped at its bound (plus at most one socket read).
        assert responder._pending_size < READ_AHEAD + 256 * 1024
        assert responder.bytes_read < len(big)
        with anyio.fail_after(BOUND):
            assert await receive_exactly(responder, len(big)) == big
        await initiator.send(b"and more")
        with anyio.fail_after(BOUND):
            assert await responder.receive() == b"and more"
        await initiator.aclose()


@STREAMS
async def test_a_receiver_takes_over_from_the_watchdog(anyio_streams: bool) -> None:
    async with (
        connected_pair(server={"keepalive": 0.01}, anyio_streams=anyio_streams) as (
            initiator,
            responder,
        ),
        anyio.create_task_group() as group,
    ):
        group.start_soon(responder.run_keepalive)
        for round_ in range(20):
            message = b"message %d" % round_
            async with anyio.create_task_group() as inner:
                inner.start_soon(initiator.send, message)
                with anyio.fail_after(BOUND):
                    assert await receive_exactly(responder, len(message)) == message
            if round_ % 4 == 0:
                await anyio.sleep(0.02)  # stop reading for a while: the watchdog reads
        await initiator.aclose()
        with anyio.fail_after(BOUND):
            await responder.wait_closed()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_hang_up_after_reading_stopped_is_noticed_at_once() -> None:
    """On the lean asyncio stream the watchdog hears of a hang-up even while parked
    (the application read, then stopped): no keep-alive, idle timer or re-check needed."""
    async with (
        connected_pair(server={"keepalive": None, "idle_timeout": None}) as (initiator, responder),
        anyio.create_task_group() as group,
    ):
        group.start_soon(responder.run_keepalive)
        await initiator.send(b"read by the application")
        with anyio.fail_after(BOUND):
            assert await responder.receive() == b"read by the application"
        reset_on_close(initiator)
        await initiator.aclose()
        with anyio.fail_after(BOUND):
            await responder.wait_closed()


@STREAMS
async def test_whole_messages_take_over_from_the_watchdog(anyio_streams: bool) -> None:
    """receive_message() (what protomux reads with) waits for the watchdog's read as
    receive() does, and the read-ahead bound counts what it takes."""
    async with (
        connected_pair(server={"keepalive": 0.01}, anyio_streams=anyio_streams) as (
            initiator,
            responder,
        ),
        anyio.create_task_group() as group,
    ):
        group.start_soon(responder.run_keepalive)
        for round_ in range(10):
            message = b"whole message %d" % round_
            async with anyio.create_task_group() as inner:
                inner.start_soon(initiator.send_message, message)
                with anyio.fail_after(BOUND):
                    assert await responder.receive_message() == message
        assert responder._pending_size == 0
        await initiator.aclose()
        with anyio.fail_after(BOUND):
            await responder.wait_closed()
