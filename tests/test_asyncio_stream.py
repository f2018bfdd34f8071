"""The lean asyncio TCP stream, over real sockets on 127.0.0.1 (asyncio only: it is the
asyncio backend's stream; on trio anyio's streams are used and tested elsewhere)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
from collections.abc import AsyncIterator

import anyio
import pytest
from anyio.abc import SocketAttribute

from p2pswarm.connection import Connection
from p2pswarm.transports import _asyncio_stream
from p2pswarm.transports._asyncio_stream import AsyncioSocketListener, AsyncioSocketStream
from p2pswarm.transports.tcp import (
    connect_tcp,
    create_socket_listener,
    create_tcp_listener,
    open_tcp_stream,
)

pytestmark = pytest.mark.anyio

HOST = "127.0.0.1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _pair(
    read_high_water: int = _asyncio_stream.DEFAULT_READ_HIGH_WATER,
) -> tuple[AsyncioSocketStream, AsyncioSocketStream]:
    bound = (await anyio.create_tcp_listener(local_host=HOST)).listeners[0]
    assert isinstance(bound, anyio.abc.SocketListener)
    listener = AsyncioSocketListener(bound, read_high_water=read_high_water)
    try:
        port = listener.extra(SocketAttribute.local_port)
        async with anyio.create_task_group() as group:
            accepted: list[AsyncioSocketStream] = []

            async def accept() -> None:
                accepted.append(await listener.accept())

            group.start_soon(accept)
            client = await _asyncio_stream.connect(HOST, port, read_high_water=read_high_water)
    finally:
        await listener.aclose()
    return client, accepted[0]


@pytest.fixture
async def pair() -> AsyncIterator[tuple[AsyncioSocketStream, AsyncioSocketStream]]:
    client, server = await _pair()
    async with client, server:
        yield client, server


async def _receive_exactly(stream: AsyncioSocketStream, size: int) -> bytes:
    parts = bytearray()
    while len(parts) < size:
        parts += await stream.receive(size - len(parts))
    return bytes(parts)


async def _receive_all(stream: AsyncioSocketStream) -> bytes:
    parts = bytearray()
    while True:
        try:
            parts += await stream.receive(1 << 20)
        except anyio.EndOfStream:
            return bytes(parts)


def _pattern(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha512(struct.pack("<Q", seed)).digest()
    return (block * (size // len(block) + 1))[:size]


async def test_data_both_ways_and_attributes(
    pair: tuple[AsyncioSocketStream, AsyncioSocketStream],
) -> None:
    client, server = pair
    await client.send(b"hello")
    assert await _receive_exactly(server, 5) == b"hello"
    await server.send(b"world!")
    assert await _receive_exactly(client, 6) == b"world!"
    assert client.extra(SocketAttribute.remote_address) == server.extra(
        SocketAttribute.local_address
    )
    assert client.extra(SocketAttribute.remote_port) == server.extra(SocketAttribute.local_port)
    assert client.extra(SocketAttribute.family) == socket.AF_INET
    raw = client.extra(SocketAttribute.raw_socket)
    assert isinstance(raw, socket.socket)
    assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


async def test_big_transfers_both_ways_at_once(
    pair: tuple[AsyncioSocketStream, AsyncioSocketStream],
) -> None:
    client, server = pair
    upstream, downstream = _pattern(6 << 20, 1), _pattern(5 << 20, 2)
    received: dict[str, bytes] = {}

    async def send(stream: AsyncioSocketStream, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(data), 100_000):
            await stream.send(bytes(view[start : start + 100_000]))
        await stream.send_eof()

    async def receive(name: str, stream: AsyncioSocketStream) -> None:
        received[name] = await _receive_all(stream)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(send, client, upstream)
            group.start_soon(send, server, downstream)
            group.start_soon(receive, "server", server)
            group.start_soon(receive, "client", client)
    assert received["server"] == upstream
    assert received["client"] == downstream


async def test_small_reads_of_a_large_chunk_lose_nothing(
    pair: tuple[AsyncioSocketStream, AsyncioSocketStream],
) -> None:
    client, server = pair
    data = _pattern(200_000, 3)
    await client.send(data)
    await client.send_eof()
    parts = []
    while True:
        try:
            piece = await server.receive(777)
        except anyio.EndOfStream:
            break
        assert 1 <= len(piece) <= 777
        parts.append(piece)
    assert b"".join(parts) == data


async def test_half_close_each_way(
    pair: tuple[AsyncioSocketStream, AsyncioSocketStream],
) -> None:
    client, server = pair
    await client.send(b"last words")
    await client.send_eof()
    await client.send_eof()  # idempotent
    assert await _receive_all(server) == b"last words"
    with pytest.raises(anyio.EndOfStream):
        await server.receive()
    with pytest.raises(anyio.ClosedResourceError):
        await client.send(b"after eof")
    # The other direction is still open.
    await server.send(b"reply")
    await server.send_eof()
    assert await _receive_all(client) == b"reply"


async def test_cancelled_receive_loses_nothing(
    pair: tuple[AsyncioSocketStream, AsyncioSocketStream],
) -> None:
    client, server = pair
    with anyio.move_on_after(0):
        await server.receive()  # waits, then is cancelled
    with anyio.CancelScope() as scope:
        scope.cancel()
        await client.send(b"sent although cancelled")  # send never checks before writing
    assert await _receive_exactly(server, 23) == b"sent although cancelled"


async def test_receive_cancelled_as_its_data_arrives_loses_nothing(
    pair: tuple[AsyncioSocketStream, AsyncioSocketStream],
) -> None:
    """The data lands in the same loop step as the cancellation, in either order."""
    client, server = pair
    raw = client.extra(SocketAttribute.raw_socket)
    for round_ in range(20):
        message = b"round %d" % round_
        async with anyio.create_task_group() as group:
            scope = anyio.CancelScope()

            async def receive_until_cancelled(scope: anyio.CancelScope = scope) -> None:
                with scope:
                    await server.receive()
                    pytest.fail("the scope was cancelled before the loop ran again")

            group.start_soon(receive_until_cancelled)
            await anyio.wait_all_tasks_blocked()
            raw.send(message)  # into the kernel now; the loop sees it next iteration
            scope.cancel()
        assert await _receive_exactly(server, len(message)) == message


async def test_cancelled_send_still_delivers_all_its_bytes() -> None:
    client, server = await _pair(read_high_water=64 * 1024)
    async with client, server:
        sent = bytearray()
        block = _pattern(1 << 20, 4)
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:

                async def flood() -> None:
                    for _ in range(512):  # far more than kernel buffers hold: it blocks
                        sent.extend(block)
                        await client.send(block)
                    pytest.fail("the reader never stopped the writer")

                group.start_soon(flood)
                await anyio.wait_all_tasks_blocked()
                scope.cancel()
        assert 0 < len(sent) < 512 * len(block)
        received: list[bytes] = []

        async def receive() -> None:
            received.append(await _receive_all(server))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                group.start_soon(receive)
                await client.send(b"after")  # waits for the reader: the kernel is full
                await client.send_eof()
        assert received == [bytes(sent) + b"after"]


async def test_slow_reader_holds_bounded_memory() -> None:
    high_water = 64 * 1024
    client, server = await _pair(read_high_water=high_water)
    async with client, server:
        total = 0
        block = b"\x5a" * (256 * 1024)

        async def flood(task_status: anyio.abc.TaskStatus[None]) -> None:
            nonlocal total
            task_status.started()
            for _ in range(128):
                await client.send(block)
                total += len(block)
            await client.send_eof()

        async with anyio.create_task_group() as group:
            await group.start(flood)
            await anyio.wait_all_tasks_blocked()
            # The writer is stuck on a full kernel: reading paused near the limit.
            protocol = server._protocol
            assert protocol.read_paused
            assert protocol.buffered < high_water + 256 * 1024  # one read past the mark at most
            assert total < 128 * len(block)
            received = 0
            with anyio.fail_after(30):
                while True:
                    try:
                        received += len(await server.receive(1 << 20))
                    except anyio.EndOfStream:
                        break
                    assert protocol.buffered < high_water + 256 * 1024
        assert received == total == 128 * len(block)


async def test_connection_reset_breaks_both_directions(
    pair: tuple[AsyncioSocketStream, AsyncioSocketStream],
) -> None:
    client, server = pair
    await client.send(b"before the reset")
    assert await _receive_exactly(server, 16) == b"before the reset"
    raw = client.extra(SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await client.aclose()  # abort with linger 0: an RST
    with anyio.fail_after(10), pytest.raises(anyio.BrokenResourceError):
        await server.receive()
    with pytest.raises(anyio.BrokenResourceError):
        await server.send(b"into the void")


async def test_data_before_a_reset_is_still_read(
    pair: tuple[AsyncioSocketStream, AsyncioSocketStream],
) -> None:
    client, server = pair
    await server.send(b"x")  # unread by the client, so its close sends an RST
    await client.send(b"first")
    await _receive_exactly(client, 1)
    await client.send(b"unread")
    raw = client.extra(SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    received = bytearray()
    with anyio.fail_after(10):
        while len(received) < 11:
            received += await server.receive()
    await client.aclose()
    assert received == b"firstunread"
    with anyio.fail_after(10), pytest.raises(anyio.BrokenResourceError):
        await server.receive()


async def test_aclose_wakes_a_waiting_receiver_and_closes(
    pair: tuple[AsyncioSocketStream, AsyncioSocketStream],
) -> None:
    client, server = pair
    outcome: list[BaseException] = []

    async def receive() -> None:
        try:
            await server.receive()
        except anyio.ClosedResourceError as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as group:
        group.start_soon(receive)
        await anyio.wait_all_tasks_blocked()
        await server.aclose()
    assert len(outcome) == 1
    with pytest.raises(anyio.ClosedResourceError):
        await server.receive()
    with pytest.raises(anyio.ClosedResourceError):
        await server.send(b"x")
    with pytest.raises(anyio.ClosedResourceError):
        await server.send_eof()
    await server.aclose()  # idempotent
    with anyio.fail_after(10), pytest.raises(anyio.EndOfStream):
        await client.receive()


async def test_concurrent_receives_are_refused(
    pair: tuple[AsyncioSocketStream, AsyncioSocketStream],
) -> None:
    client, server = pair
    async with anyio.create_task_group() as group:
        group.start_soon(server.receive)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(anyio.BusyResourceError):
            await server.receive()
        await client.send(b"!")
    with pytest.raises(ValueError):
        await server.receive(0)


async def test_receive_before_a_deadline(
    pair: tuple[AsyncioSocketStream, AsyncioSocketStream],
) -> None:
    client, server = pair
    loop = asyncio.get_running_loop()
    assert await server.receive_before(loop.time()) is None
    assert await server.receive_before(loop.time() - 1) is None
    await client.send(b"in time")
    assert await _receive_exactly(server, 1) == b"i"
    # Buffered bytes are returned whatever the deadline.
    assert await server.receive_before(loop.time() - 1) == b"n time"
    await client.send_eof()
    with pytest.raises(anyio.EndOfStream):
        await server.receive_before(loop.time())


async def test_listener_close_ends_a_pending_accept() -> None:
    listener = await create_socket_listener(local_host=HOST)
    assert all(isinstance(inner, AsyncioSocketListener) for inner in listener.listeners)
    inner = listener.listeners[0]
    assert isinstance(inner, AsyncioSocketListener)
    outcome: list[BaseException] = []

    async def accept() -> None:
        try:
            await inner.accept()
        except anyio.ClosedResourceError as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as group:
        group.start_soon(accept)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(anyio.BusyResourceError):
            await inner.accept()
        await listener.aclose()
    assert len(outcome) == 1
    with pytest.raises(anyio.ClosedResourceError):
        await inner.accept()


async def test_open_tcp_stream_uses_the_lean_stream_and_reports_refusal() -> None:
    listener = await create_socket_listener(local_host=HOST)
    port = listener.extra(SocketAttribute.local_port)
    async with listener:
        stream = await open_tcp_stream(HOST, port)
        async with stream:
            assert isinstance(stream, AsyncioSocketStream)
            inner = listener.listeners[0]
            assert isinstance(inner, AsyncioSocketListener)
            accepted = await inner.accept()
            async with accepted:
                assert isinstance(accepted, AsyncioSocketStream)
                await stream.send(b"ok")
                assert await accepted.receive() == b"ok"
    with pytest.raises(OSError):
        await open_tcp_stream(HOST, port)  # nobody listens there any more


async def _count_ticks(ticks: list[int], task_status: anyio.abc.TaskStatus[None]) -> None:
    task_status.started()
    while True:
        ticks[0] += 1
        await anyio.lowlevel.checkpoint()


async def test_a_reader_with_plenty_buffered_lets_other_tasks_run(
    pair: tuple[AsyncioSocketStream, AsyncioSocketStream],
) -> None:
    client, server = pair
    await client.send(bytes(200))  # one segment: it arrives in one piece
    ticks = [0]
    async with anyio.create_task_group() as group:
        assert await server.receive(1) == b"\0"  # waited: the other 199 are buffered now
        await group.start(_count_ticks, ticks)
        before = ticks[0]
        for _ in range(199):
            assert await server.receive(1) == b"\0"
        assert ticks[0] - before >= 199 // (_asyncio_stream._FAIR_STREAK + 1)
        group.cancel_scope.cancel()


async def test_a_writer_the_kernel_keeps_up_with_lets_other_tasks_run(
    pair: tuple[AsyncioSocketStream, AsyncioSocketStream],
) -> None:
    client, server = pair
    ticks = [0]
    async with anyio.create_task_group() as group:
        await group.start(_count_ticks, ticks)
        before = ticks[0]
        for _ in range(200):
            await client.send(b"small")  # never fills the kernel's buffer
        assert ticks[0] - before >= 200 // (_asyncio_stream._FAIR_STREAK + 1)
        group.cancel_scope.cancel()
    assert await _receive_exactly(server, 1000) == b"small" * 200


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("listen_on", "dial"),
    [("127.0.0.1", "localhost"), ("::1", "::1")],
    ids=["name-resolved", "ipv6-literal"],
)
async def test_connect_by_name_and_by_ipv6_literal(listen_on: str, dial: str) -> None:
    if ":" in listen_on and not _has_ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    listener = await create_socket_listener(local_host=listen_on)
    port = listener.extra(SocketAttribute.local_port)
    async with listener:
        inner = listener.listeners[0]
        assert isinstance(inner, AsyncioSocketListener)
        async with anyio.create_task_group() as group:
            accepted: list[AsyncioSocketStream] = []

            async def accept() -> None:
                accepted.append(await inner.accept())

            group.start_soon(accept)
            stream = await _asyncio_stream.connect(dial, port)
        async with stream, accepted[0]:
            await stream.send(b"over " + listen_on.encode())
            assert await _receive_exactly(accepted[0], 5 + len(listen_on)) == (
                b"over " + listen_on.encode()
            )
            assert stream.extra(SocketAttribute.remote_port) == port


async def test_connections_of_the_tcp_api_ride_the_lean_stream() -> None:
    """``connect_tcp`` and ``create_tcp_listener`` pick this stream on asyncio (a silent
    fallback to anyio's would cost a third of every round trip and pass every other test)."""
    server = await create_tcp_listener(local_host=HOST, keepalive=None, idle_timeout=None)
    async with server, anyio.create_task_group() as group:
        accepted: list[Connection] = []

        async def accept() -> None:
            accepted.append(await server.accept())

        group.start_soon(accept)
        client = await connect_tcp(
            HOST,
            server.local_address[1],
            remote_public_key=server.public_key,
            keepalive=None,
            idle_timeout=None,
        )
    async with client, accepted[0] as responder:
        for connection in (client, responder):
            assert isinstance(connection._stream, AsyncioSocketStream)
        await client.send(b"ping")
        assert await responder.receive() == b"ping"
