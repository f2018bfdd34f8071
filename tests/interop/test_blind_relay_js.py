"""The blind relay against the real JS blind-relay 1.6.1 (``js_blind_relay.js``): control
connections are secret streams over TCP on 127.0.0.1, relayed data runs on real UDX sockets
(udx-native on the JS side).

* a JS relay pairs two Python clients; bytes flow both ways through it;
* a Python relay pairs two JS clients (and forgets them once they hang up);
* a Python client and a JS client pair through a Python relay and through a JS relay.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from p2pswarm import connect_tcp, create_tcp_listener
from p2pswarm.connection import Connection
from p2pswarm.mux import Mux
from p2pswarm.relay import BlindRelayClient, BlindRelayServer
from p2pswarm.transports.udx import UDXSocket, UDXStream, open_udx_socket

from ..relay.helpers import announce, read_all, run_quietly
from ._js import HERE, NODE_MODULES

pytestmark = [
    pytest.mark.interop,
    pytest.mark.anyio,
    pytest.mark.skipif(
        shutil.which("node") is None or not (NODE_MODULES / "blind-relay").is_dir(),
        reason="node and the pinned JS fixture (npm ci in tests/interop) are needed",
    ),
]

LIMIT = 45
SIZE = 200_000


def pattern(size: int, seed: int) -> bytes:
    """The JS script's data: byte i is (7 i + seed) mod 256."""
    return bytes((i * 7 + seed) & 0xFF for i in range(size))


class JsProcess:
    def __init__(self, process: anyio.abc.Process) -> None:
        assert process.stdout is not None
        self.process = process
        self.lines = BufferedByteReceiveStream(process.stdout)

    async def next(self) -> dict[str, Any]:
        line = await self.lines.receive_until(b"\n", 1 << 20)
        message: dict[str, Any] = json.loads(line)
        assert message.get("event") != "error", message
        return message


@asynccontextmanager
async def js(*args: str) -> AsyncIterator[JsProcess]:
    node = shutil.which("node")
    assert node is not None
    process = await anyio.open_process(
        [node, str(HERE / "js_blind_relay.js"), *args], stdin=None, stderr=None, cwd=HERE
    )
    try:
        yield JsProcess(process)
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            await process.aclose()


@asynccontextmanager
async def python_relay() -> AsyncIterator[tuple[BlindRelayServer, int, int]]:
    """A Python relay: (server, TCP port, UDX port)."""
    async with (
        open_udx_socket() as socket,
        await create_tcp_listener(local_host="127.0.0.1") as listener,
        anyio.create_task_group() as tg,
    ):
        server = BlindRelayServer(socket)

        async def handle(connection: Connection) -> None:
            mux = Mux(connection)
            server.accept(mux)
            await run_quietly(mux)

        tg.start_soon(listener.serve, handle)
        yield server, listener.local_address[1], socket.local_address[1]
        server.close()
        tg.cancel_scope.cancel()


@asynccontextmanager
async def js_relay() -> AsyncIterator[tuple[JsProcess, int, int]]:
    async with js("server") as process:
        hello = await process.next()
        yield process, int(hello["port"]), int(hello["udx"])


async def python_client(
    tg: anyio.abc.TaskGroup, tcp_port: int
) -> tuple[BlindRelayClient, Connection]:
    connection = await connect_tcp("127.0.0.1", tcp_port)
    mux = Mux(connection)
    client = BlindRelayClient(mux)
    tg.start_soon(run_quietly, mux)
    return client, connection


async def python_side(
    client: BlindRelayClient, socket: UDXSocket, udx_port: int, token: bytes, initiator: bool
) -> UDXStream:
    stream = socket.create_stream()
    remote_id = await client.pair(initiator, token, stream)
    stream.connect(remote_id, "127.0.0.1", udx_port)
    stream.send_message(b"")  # the relay stream learns our address before data arrives
    return stream


async def send_and_read(stream: UDXStream, data: bytes) -> bytes:
    async with anyio.create_task_group() as tg:

        async def send() -> None:
            await stream.send(data)
            await stream.send_eof()

        tg.start_soon(send)
        got = await read_all(stream)
    return got


async def test_a_js_relay_relays_a_python_pair() -> None:
    async with js_relay() as (relay, tcp_port, udx_port), anyio.create_task_group() as tg:
        with anyio.fail_after(LIMIT):
            (ca, conn_a), (cb, conn_b) = (
                await python_client(tg, tcp_port),
                await python_client(tg, tcp_port),
            )
            async with open_udx_socket() as sa, open_udx_socket() as sb:
                token = os.urandom(32)
                streams: dict[str, UDXStream] = {}

                async def side(name: str, c: BlindRelayClient, s: UDXSocket, init: bool) -> None:
                    streams[name] = await python_side(c, s, udx_port, token, init)

                async with anyio.create_task_group() as pair_tg:
                    pair_tg.start_soon(side, "a", ca, sa, True)
                    pair_tg.start_soon(side, "b", cb, sb, False)
                assert (await relay.next())["event"] == "paired"
                a, b = streams["a"], streams["b"]
                await announce(a, b)
                data_a, data_b = os.urandom(SIZE), os.urandom(SIZE // 2)
                got: dict[str, bytes] = {}

                async def run(name: str, s: UDXStream, data: bytes) -> None:
                    got[name] = await send_and_read(s, data)

                async with anyio.create_task_group() as io_tg:
                    io_tg.start_soon(run, "a", a, data_a)
                    io_tg.start_soon(run, "b", b, data_b)
                assert got == {"a": data_b, "b": data_a}
            await conn_a.aclose()
            await conn_b.aclose()
        tg.cancel_scope.cancel()


async def test_a_python_relay_serves_a_js_pair_and_forgets_it_when_they_hang_up() -> None:
    async with python_relay() as (server, tcp_port, udx_port):
        with anyio.fail_after(LIMIT):
            async with js("clients", str(tcp_port), str(udx_port), str(SIZE)) as clients:
                result = await clients.next()
                assert result == {"event": "result", "ok": True, "a": SIZE, "b": SIZE}
            assert server.stats.matched == 1
            await server.wait_until(lambda r: r.links == 0 and r.pending == 0)


@pytest.mark.parametrize("relay_kind", ["python", "js"])
async def test_a_python_client_and_a_js_client_pair_through_a_relay(relay_kind: str) -> None:
    @asynccontextmanager
    async def any_relay() -> AsyncIterator[tuple[int, int]]:
        if relay_kind == "python":
            async with python_relay() as (_, tcp_port, udx_port):
                yield tcp_port, udx_port
        else:
            async with js_relay() as (_, tcp_port, udx_port):
                yield tcp_port, udx_port

    async with any_relay() as (tcp_port, udx_port), anyio.create_task_group() as tg:
        with anyio.fail_after(LIMIT):
            client, connection = await python_client(tg, tcp_port)
            token = os.urandom(32)
            async with (
                open_udx_socket() as socket,
                js("client", str(tcp_port), str(udx_port), token.hex(), "1", str(SIZE)) as peer,
            ):
                stream = await python_side(client, socket, udx_port, token, False)
                mine = os.urandom(SIZE // 2)
                got = await send_and_read(stream, mine)
                assert got == pattern(SIZE, 1)
                result = await peer.next()
                assert result["got"] == hashlib.sha256(mine).hexdigest()
            await connection.aclose()
        tg.cancel_scope.cancel()
