"""Through a blind relay on 127.0.0.1: bulk throughput and 64-byte echo round trips, the
Python relay next to the JS blind-relay 1.6.1 relay in the same run.

The relay runs in its own process (Python: this file with ``--serve``; JS:
``tests/interop/js_blind_relay.js server``). The two ends are the same in both cases: two
Python UDX streams in this process, paired through the relay over secret-stream control
connections, then bytes through the relay's ``relay_to`` forwarding. Each run prints one
JSON line: ``relay`` (py | js), MB/s for ``--mib`` MiB one way, and the median / p90 echo
round trip in microseconds over ``--pings``.

    .venv/bin/python bench/relay.py --mib 16 --pings 500 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, versions

from p2pswarm import connect_tcp, create_tcp_listener
from p2pswarm.connection import Connection
from p2pswarm.mux import Mux
from p2pswarm.relay import BlindRelayClient, BlindRelayServer
from p2pswarm.transports.udx import UDXStream, open_udx_socket

HERE = Path(__file__).resolve().parent
JS_RELAY = HERE.parent / "tests" / "interop" / "js_blind_relay.js"


async def serve() -> None:
    """The Python relay process: prints {"port", "udx"}, runs until killed."""
    async with (
        open_udx_socket() as socket,
        await create_tcp_listener(local_host="127.0.0.1") as listener,
    ):
        relay = BlindRelayServer(socket)

        async def handle(connection: Connection) -> None:
            mux = Mux(connection)
            relay.accept(mux)
            try:
                await mux.run()
            except Exception:
                return

        print(json.dumps({"port": listener.local_address[1], "udx": socket.local_address[1]}))
        sys.stdout.flush()
        await listener.serve(handle)


async def measure(tcp_port: int, udx_port: int, mib: int, pings: int) -> dict[str, Any]:
    async with (
        anyio.create_task_group() as tg,
        open_udx_socket() as sa,
        open_udx_socket() as sb,
    ):
        clients = []
        for _ in range(2):
            conn = await connect_tcp("127.0.0.1", tcp_port)
            mux = Mux(conn)
            clients.append(BlindRelayClient(mux))
            tg.start_soon(mux.run)
        token = os.urandom(32)
        a, b = sa.create_stream(), sb.create_stream()
        ids: dict[str, int] = {}

        async def pair(name: str, client: BlindRelayClient, init: bool, s: UDXStream) -> None:
            ids[name] = await client.pair(init, token, s)

        async with anyio.create_task_group() as ptg:
            ptg.start_soon(pair, "a", clients[0], True, a)
            ptg.start_soon(pair, "b", clients[1], False, b)
        a.connect(ids["a"], "127.0.0.1", udx_port)
        b.connect(ids["b"], "127.0.0.1", udx_port)
        # Warm the path (each relay stream learns its end's address from its first packet).
        await b.send(b"x")
        await a.send(b"y")
        assert await a.receive() == b"x" and await b.receive() == b"y"

        total = mib << 20
        chunk = os.urandom(65536)
        start = time.perf_counter()

        async def sink() -> None:
            got = 0
            while got < total:
                got += len(await b.receive())

        async with anyio.create_task_group() as btg:
            btg.start_soon(sink)
            for _ in range(total // len(chunk)):
                await a.send(chunk)
        bulk_s = time.perf_counter() - start

        rtts = []
        ping = bytes(64)
        for _ in range(pings):
            t0 = time.perf_counter()
            await a.send(ping)
            got = 0
            while got < 64:
                got += len(await b.receive())
            await b.send(ping)
            got = 0
            while got < 64:
                got += len(await a.receive())
            rtts.append((time.perf_counter() - t0) * 1e6)
        tg.cancel_scope.cancel()
    rtts.sort()
    return {
        "mb_s": round(total / bulk_s / 1e6, 1),
        "rtt_us_median": round(statistics.median(rtts), 1),
        "rtt_us_p90": round(rtts[int(len(rtts) * 0.9)], 1),
    }


def start_relay(kind: str) -> tuple[subprocess.Popen[str], int, int]:
    if kind == "py":
        command = [sys.executable, __file__, "--serve"]
    else:
        node = shutil.which("node")
        assert node is not None, "node is needed for the JS relay"
        command = [node, str(JS_RELAY), "server"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, cwd=JS_RELAY.parent if kind == "js" else None
    )
    assert process.stdout is not None
    hello = json.loads(process.stdout.readline())
    return process, int(hello["port"]), int(hello["udx"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", action="store_true", help="run the Python relay (internal)")
    parser.add_argument("--mib", type=int, default=16)
    parser.add_argument("--pings", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.serve:
        anyio.run(serve)
        return
    for round_ in range(args.rounds):
        for kind in ("py", "js"):
            process, tcp_port, udx_port = start_relay(kind)
            try:
                result = anyio.run(measure, tcp_port, udx_port, args.mib, args.pings)
            finally:
                process.kill()
                process.wait()
            emit(
                {
                    "bench": "relay",
                    "relay": kind,
                    "round": round_,
                    "mib": args.mib,
                    "pings": args.pings,
                    "load1": os.getloadavg()[0],
                    **result,
                    "versions": versions(),
                }
            )


if __name__ == "__main__":
    main()
