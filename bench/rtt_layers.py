"""Where a 64-byte round trip's time goes on asyncio, layer by layer (one process).

Each line times ``--pings`` ping-pongs of 64 bytes (after 100 warm-up), one in flight, both
ends in this process, and prints ``{"bench": "rtt_layers", "layer": ..., "rtt_us": {...}}``:

* ``asyncio-protocol-echo``: raw asyncio, an echo in ``data_received``: the event loop's
  floor, no anyio, no crypto.
* ``anyio-socketstream-echo``: anyio's ``SocketStream`` both ends, no crypto.
* ``connection/connect-tcp[/no-keepalive]``: p2pswarm ``Connection`` as ``connect_tcp``
  and the listener make it (whatever stream they use on this backend), with the library's
  keep-alive timers or without.
* ``connection/protocol-stream[/no-keepalive]``: the same ``Connection`` over a minimal
  ``ByteStream`` built directly on an asyncio ``Protocol`` (below): what a transport that
  skips anyio's per-receive ``pause_reading``/``resume_reading`` and per-send checkpoint
  would give.

    python bench/rtt_layers.py [--pings 3000] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import anyio
from anyio.abc import ByteStream

from p2pswarm import KeyPair, connect_tcp, create_tcp_listener
from p2pswarm.transports._handshake import accept_handshake, initiate_handshake

HOST = "127.0.0.1"
PING = b"\x01" + b"\x55" * 63
WARMUP = 100
NO_KEEPALIVE = {"keepalive": None, "idle_timeout": None}
#: Buffered bytes above which the protocol stream stops reading (flow control).
HIGH_WATER = 1 << 20


def summary(samples: list[float]) -> dict[str, float]:
    data = sorted(samples)

    def q(p: float) -> float:
        return round(data[min(len(data) - 1, int(p * (len(data) - 1) + 0.5))], 1)

    return {"n": len(data), "median": q(0.5), "p90": q(0.9), "p99": q(0.99)}


async def time_pings(
    send: Callable[[bytes], Awaitable[None]], receive: Callable[[], Awaitable[bytes]], n: int
) -> dict[str, float]:
    samples = []
    for i in range(WARMUP + n):
        t = time.perf_counter_ns()
        await send(PING)
        got = 0
        while got < len(PING):
            got += len(await receive())
        if i >= WARMUP:
            samples.append((time.perf_counter_ns() - t) / 1000)
    return summary(samples)


class _Protocol(asyncio.Protocol):
    """Buffers what arrives and wakes one waiter; pauses reading only above HIGH_WATER."""

    def __init__(self) -> None:
        self.buffer: deque[bytes] = deque()
        self.size = 0
        self.waiter: asyncio.Future[None] | None = None
        self.drain: asyncio.Future[None] | None = None
        self.eof = False
        self.paused = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer.append(data)
        self.size += len(data)
        if self.size > HIGH_WATER and not self.paused and self.transport is not None:
            self.transport.pause_reading()
            self.paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self._wake()
        self.resume_writing()

    def pause_writing(self) -> None:
        self.drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.drain is not None and not self.drain.done():
            self.drain.set_result(None)
        self.drain = None


class ProtocolStream(ByteStream):
    """A ``ByteStream`` straight on :class:`_Protocol`: one future per wait, no syscalls
    beyond the reads and writes themselves."""

    def __init__(self, protocol: _Protocol) -> None:
        assert protocol.transport is not None
        self._protocol = protocol
        self._transport = protocol.transport

    async def receive(self, max_bytes: int = 65536) -> bytes:
        protocol = self._protocol
        while not protocol.buffer:
            if protocol.eof:
                raise anyio.EndOfStream
            protocol.waiter = asyncio.get_running_loop().create_future()
            await protocol.waiter
        data = protocol.buffer.popleft()
        if len(data) > max_bytes:
            protocol.buffer.appendleft(data[max_bytes:])
            data = data[:max_bytes]
        protocol.size -= len(data)
        if protocol.paused and protocol.size < HIGH_WATER // 2:
            protocol.paused = False
            self._transport.resume_reading()
        return data

    async def send(self, item: bytes) -> None:
        self._transport.write(item)
        if self._protocol.drain is not None:
            await self._protocol.drain

    async def send_eof(self) -> None:
        self._transport.write_eof()

    async def aclose(self) -> None:
        self._transport.close()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {}


async def protocol_pair() -> tuple[ProtocolStream, ProtocolStream, asyncio.Server]:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[_Protocol] = loop.create_future()

    class Accepting(_Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            accepted.set_result(self)

    server = await loop.create_server(Accepting, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    _, client = await loop.create_connection(_Protocol, HOST, port)
    return ProtocolStream(client), ProtocolStream(await accepted), server


async def asyncio_protocol_echo(n: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    server = await loop.create_server(Echo, HOST, 0)
    _, client = await loop.create_connection(_Protocol, HOST, server.sockets[0].getsockname()[1])
    stream = ProtocolStream(client)
    try:
        return await time_pings(stream.send, stream.receive, n)
    finally:
        await stream.aclose()
        server.close()


async def anyio_socketstream_echo(n: int) -> dict[str, float]:
    async def echo(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            while True:
                try:
                    await stream.send(await stream.receive())
                except anyio.EndOfStream:
                    return

    listener = await anyio.create_tcp_listener(local_host=HOST)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, echo)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with await anyio.connect_tcp(HOST, port) as stream:
            result = await time_pings(stream.send, stream.receive, n)
        tg.cancel_scope.cancel()
    return result


async def echo_connection(conn: Any) -> None:
    async with conn:
        while True:
            try:
                await conn.send(await conn.receive())
            except anyio.EndOfStream:
                return


async def connection_over_tcp(n: int, options: dict[str, Any]) -> dict[str, float]:
    listener = await create_tcp_listener(local_host=HOST, **options)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, echo_connection)
        conn = await connect_tcp(
            HOST, listener.local_address[1], remote_public_key=listener.public_key, **options
        )
        async with conn:
            result = await time_pings(conn.send, conn.receive, n)
        tg.cancel_scope.cancel()
    return result


async def connection_over_protocol(n: int, options: dict[str, Any]) -> dict[str, float]:
    client_stream, server_stream, server = await protocol_pair()
    key_pair = KeyPair.generate()
    address = (HOST, 0)
    async with anyio.create_task_group() as tg:

        async def serve() -> None:
            conn = await accept_handshake(
                server_stream, key_pair=key_pair, remote_address=address, **options
            )
            await echo_connection(conn)

        tg.start_soon(serve)
        conn = await initiate_handshake(
            client_stream,
            key_pair=KeyPair.generate(),
            remote_public_key=key_pair.public_key,
            remote_address=address,
            **options,
        )
        async with conn:
            result = await time_pings(conn.send, conn.receive, n)
        tg.cancel_scope.cancel()
    server.close()
    return result


LAYERS: dict[str, Callable[[int], Awaitable[dict[str, float]]]] = {
    "asyncio-protocol-echo": asyncio_protocol_echo,
    "anyio-socketstream-echo": anyio_socketstream_echo,
    "connection/connect-tcp": lambda n: connection_over_tcp(n, {}),
    "connection/connect-tcp/no-keepalive": lambda n: connection_over_tcp(n, NO_KEEPALIVE),
    "connection/protocol-stream": lambda n: connection_over_protocol(n, {}),
    "connection/protocol-stream/no-keepalive": lambda n: connection_over_protocol(n, NO_KEEPALIVE),
}


async def run_layer(args: argparse.Namespace) -> None:
    line = {
        "bench": "rtt_layers",
        "layer": args.layer,
        "loop": "uvloop" if args.uvloop else "asyncio",
        "rtt_us": await LAYERS[args.layer](args.pings),
    }
    sys.stdout.write(json.dumps(line) + "\n")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pings", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--uvloop", action="store_true", help="asyncio on uvloop")
    parser.add_argument("--layer", choices=sorted(LAYERS), help="run only this layer, here")
    args = parser.parse_args()
    if args.layer is None:
        # Every layer in a fresh process: what one layer leaves behind in a loop (even a
        # closed connection's transport) measurably changes the next layer's figures.
        for _ in range(args.rounds):
            for layer in LAYERS:
                command = [sys.executable, __file__, f"--layer={layer}", f"--pings={args.pings}"]
                subprocess.run([*command, *(["--uvloop"] if args.uvloop else [])], check=True)
        return
    options = {"use_uvloop": True} if args.uvloop else {}
    anyio.run(run_layer, args, backend="asyncio", backend_options=options)


if __name__ == "__main__":
    cli()
