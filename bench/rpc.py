"""Request/response per second: raw Connection round trips, Mux channels, RPC, 20 peers, JS.

Every case runs both ends in this one process and event loop on 127.0.0.1 (as
``throughput.py --mode=single`` and the anchor do) and prints one JSON line:
``{"bench": "rpc", "impl", "case", "n", "per_s", ...}``.

Cases (``--size`` bytes of payload, default 64):

* ``raw-seq`` / ``raw-concurrent``: ``Connection.send_message`` echoed by the other end,
  one in flight / ``--concurrency`` in flight: the floor under everything else.
* ``mux-seq`` / ``mux-concurrent``: the same echo on a protomux channel (``RAW`` codec).
* ``rpc-seq`` / ``rpc-concurrent``: ``peer.request("echo", text)`` with the JSON codec.
* ``rpc-20-peers``: one RPC over 20 connections to 20 servers, ``rpc.request`` choosing the
  peer (selection policy), ``--concurrency`` x 2 in flight.
* ``py-js-mux-seq`` / ``py-js-mux-concurrent``: our Mux against the real JS protomux
  (``tests/interop/js_protomux_peer.js --bench``) echoing.
* With ``--js``, also ``bench/js_protomux_bench.js``: JS protomux against itself.

Usage: ``python bench/rpc.py [--requests 5000] [--concurrency 32] [--js] [--backend trio]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from _common import HOST, add_backend_argument, emit, summary, versions

from p2pswarm import connect_tcp, create_tcp_listener
from p2pswarm.connection import Connection
from p2pswarm.keys import KeyPair
from p2pswarm.mux import RAW, Mux
from p2pswarm.rpc import RPC, RateLimiter

ROOT = Path(__file__).resolve().parent.parent
#: A limiter that never gets in the way of a benchmark.
UNLIMITED = {"rate": 1e9, "burst": 1e9}


async def timed(
    n: int, concurrency: int, one: Callable[[], Awaitable[None]]
) -> tuple[float, list[float]]:
    """Run ``one()`` ``n`` times, ``concurrency`` at once; (seconds, per-call µs if seq)."""
    rtts: list[float] = []
    start = time.perf_counter()
    if concurrency == 1:
        for _ in range(n):
            t0 = time.perf_counter()
            await one()
            rtts.append((time.perf_counter() - t0) * 1e6)
    else:
        left = n

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await one()

        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
    return time.perf_counter() - start, rtts


def report(case: str, n: int, seconds: float, rtts: list[float], **extra: Any) -> None:
    out: dict[str, Any] = {"bench": "rpc", "impl": "p2pswarm", "case": case, "n": n}
    out["per_s"] = round(n / seconds)
    if rtts:
        out["rtt_us"] = summary(rtts)
    emit({**out, **extra, "versions": versions()})


class Pairs:
    """``count`` connections, each to its own listener (so 20 distinct peer keys)."""

    def __init__(self) -> None:
        self.client_key = KeyPair.generate()

    async def open(
        self, tg: anyio.abc.TaskGroup, count: int, serve: Callable[[Connection], Awaitable[None]]
    ) -> list[Connection]:
        clients = []
        for _ in range(count):
            listener = await create_tcp_listener(local_host=HOST, keepalive=None, idle_timeout=None)
            tg.start_soon(listener.serve, serve)
            clients.append(
                await connect_tcp(
                    HOST,
                    listener.local_address[1],
                    key_pair=self.client_key,
                    keepalive=None,
                    idle_timeout=None,
                )
            )
        return clients


async def raw_echo(conn: Connection) -> None:
    try:
        while True:
            await conn.send_message(await conn.receive_message())
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass


def mux_echo_setup(mux: Mux) -> None:
    channel = mux.create_channel("echo")
    assert channel is not None
    channel.add_message(RAW)
    channel.add_message(RAW, on_message=lambda m, ch: ch.messages[1].send_nowait(m))
    channel.open()


async def mux_echo(conn: Connection) -> None:
    mux = Mux(conn)
    mux_echo_setup(mux)
    await mux.run()


class MuxClient:
    """Round trips on an echo channel: replies wake waiters in order (one FIFO)."""

    def __init__(self, mux: Mux) -> None:
        from collections import deque

        self.waiters: deque[anyio.Event] = deque()
        channel = mux.create_channel("echo")
        assert channel is not None
        channel.add_message(RAW)
        channel.add_message(RAW, on_message=self._reply)
        channel.open()
        self.channel = channel

    def _reply(self, message: bytes, channel: object) -> None:
        self.waiters.popleft().set()

    async def call(self, payload: bytes) -> None:
        event = anyio.Event()
        self.waiters.append(event)
        self.channel.messages[1].send_nowait(payload)
        await event.wait()


async def case_raw(args: argparse.Namespace) -> None:
    payload = b"\x01" * args.size
    async with anyio.create_task_group() as tg:
        (conn,) = await Pairs().open(tg, 1, raw_echo)
        lock = anyio.Lock()
        from collections import deque

        waiters: deque[anyio.Event] = deque()

        async def reader() -> None:
            try:
                while True:
                    await conn.receive_message()
                    waiters.popleft().set()
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass

        tg.start_soon(reader)

        async def one() -> None:
            event = anyio.Event()
            async with lock:
                waiters.append(event)
                await conn.send_message(payload)
            await event.wait()

        for case, c in (("raw-seq", 1), ("raw-concurrent", args.concurrency)):
            seconds, rtts = await timed(args.requests, c, one)
            report(case, args.requests, seconds, rtts, concurrency=c, size=args.size)
        await conn.aclose()
        tg.cancel_scope.cancel()


async def case_mux(args: argparse.Namespace) -> None:
    payload = b"\x01" * args.size
    async with anyio.create_task_group() as tg:
        (conn,) = await Pairs().open(tg, 1, mux_echo)
        mux = Mux(conn)
        client = MuxClient(mux)
        tg.start_soon(mux.run)
        await client.channel.fully_opened()
        for case, c in (("mux-seq", 1), ("mux-concurrent", args.concurrency)):
            seconds, rtts = await timed(args.requests, c, lambda: client.call(payload))
            report(case, args.requests, seconds, rtts, concurrency=c, size=args.size)
        await conn.aclose()
        tg.cancel_scope.cancel()


async def case_rpc(args: argparse.Namespace, peers: int) -> None:
    text = "x" * args.size
    server = RPC(limiter=RateLimiter(**UNLIMITED))
    server.handle("echo", lambda payload, peer: payload)
    client = RPC(limiter=RateLimiter(**UNLIMITED))

    async def serve(conn: Connection) -> None:
        mux = Mux(conn)
        server.attach(mux)
        await mux.run()

    async with anyio.create_task_group() as tg:
        conns = await Pairs().open(tg, peers, serve)
        for conn in conns:
            mux = Mux(conn)
            client.attach(mux)
            tg.start_soon(mux.run)
        await client.wait_for_peers(peers)
        if peers == 1:
            (peer,) = client.peers.values()
            cases = (("rpc-seq", 1), ("rpc-concurrent", args.concurrency))
            for case, c in cases:
                seconds, rtts = await timed(args.requests, c, lambda: peer.request("echo", text))
                report(case, args.requests, seconds, rtts, concurrency=c, size=args.size)
        else:
            c = args.concurrency * 2
            seconds, _ = await timed(args.requests, c, lambda: client.request("echo", text))
            spread = sorted(p.stats.ok for p in client.peers.values())
            report(
                f"rpc-{peers}-peers",
                args.requests,
                seconds,
                [],
                concurrency=c,
                size=args.size,
                per_peer_min=spread[0],
                per_peer_max=spread[-1],
            )
        for conn in conns:
            await conn.aclose()
        tg.cancel_scope.cancel()


async def case_py_js(args: argparse.Namespace) -> None:
    node = shutil.which("node")
    if node is None:
        return
    payload = b"\x01" * args.size
    process = await anyio.open_process(
        [node, str(ROOT / "tests" / "interop" / "js_protomux_peer.js"), "--bench"],
        stdin=None,
        stderr=None,
    )
    try:
        assert process.stdout is not None
        from anyio.streams.buffered import BufferedByteReceiveStream

        lines = BufferedByteReceiveStream(process.stdout)
        port = int(json.loads(await lines.receive_until(b"\n", 1 << 16))["port"])
        conn = await connect_tcp(HOST, port, keepalive=None, idle_timeout=None)
        mux = Mux(conn)
        client = MuxClient(mux)
        async with anyio.create_task_group() as tg:
            tg.start_soon(mux.run)
            await client.channel.fully_opened()
            for case, c in (("py-js-mux-seq", 1), ("py-js-mux-concurrent", args.concurrency)):
                seconds, rtts = await timed(args.requests, c, lambda: client.call(payload))
                report(case, args.requests, seconds, rtts, concurrency=c, size=args.size)
            await conn.aclose()
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            await process.aclose()


async def case_js(args: argparse.Namespace) -> None:
    node = shutil.which("node")
    if node is None:
        return
    result = await anyio.run_process(
        [
            node,
            str(ROOT / "bench" / "js_protomux_bench.js"),
            f"--requests={args.requests}",
            f"--concurrency={args.concurrency}",
            f"--size={args.size}",
        ]
    )
    sys.stdout.write(result.stdout.decode())


async def main(args: argparse.Namespace) -> None:
    await case_raw(args)
    await case_mux(args)
    await case_rpc(args, 1)
    await case_rpc(args, 20)
    await case_py_js(args)
    if args.js:
        await case_js(args)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--js", action="store_true", help="also run JS protomux against itself")
    add_backend_argument(parser)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    anyio.run(main, arguments, backend=arguments.backend)
