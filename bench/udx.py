"""UDX on 127.0.0.1: bulk throughput (64 KiB writes) and 64-byte round trips, with and
without the secret stream, our Python UDX next to JS udx-native in the same run.

Each run prints one JSON line: ``impl`` (py | js), ``test`` (bulk | rtt), ``secret``, and
MB/s with CPU ms per MiB, or the median / p90 round trip in microseconds with CPU per ping.
Both sides run sender and receiver in one process over two UDP sockets, so CPU per MiB
counts both ends. JS runs ``bench/js_udx_bench.js`` with the interop fixture's packages.

    .venv/bin/python bench/udx.py --mib 32 --pings 2000 [--rounds 2] [--backend trio]
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

from _common import add_backend_argument, cpu_ms, emit, versions

from p2pswarm import KeyPair
from p2pswarm.transports._handshake import accept_handshake, initiate_handshake
from p2pswarm.transports.udx import open_udx_socket

HERE = Path(__file__).resolve().parent
JS_BENCH = HERE / "js_udx_bench.js"


async def py_pair(secret: bool, body: Any) -> Any:
    async with open_udx_socket() as sa, open_udx_socket() as sb:
        a, b = sa.create_stream(), sb.create_stream()
        a.connect(b.id, *sb.local_address)
        b.connect(a.id, *sa.local_address)
        if not secret:
            return await body(a, b)
        results: dict[str, Any] = {}

        async def accept() -> None:
            results["b"] = await accept_handshake(b, key_pair=KeyPair.generate(), keepalive=None)

        async with anyio.create_task_group() as tg:
            tg.start_soon(accept)
            results["a"] = await initiate_handshake(a, key_pair=KeyPair.generate(), keepalive=None)
        return await body(results["a"], results["b"])


async def py_bulk(mib: int, secret: bool) -> dict[str, Any]:
    total = mib * 1024 * 1024
    chunk = os.urandom(65536)

    async def body(a: Any, b: Any) -> dict[str, Any]:
        received = 0

        async def sink() -> None:
            nonlocal received
            while received < total:
                received += len(await b.receive(1 << 20))

        cpu0, t0 = cpu_ms(), time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(sink)
            for _ in range(total // len(chunk)):
                await a.send(chunk)
        seconds = time.perf_counter() - t0
        cpu = cpu_ms() - cpu0
        return {
            "mib": mib,
            "ms": seconds * 1000,
            "mb_per_s": total / 1e6 / seconds,
            "cpu_ms_per_mib": cpu / mib,
        }

    result: dict[str, Any] = await py_pair(secret, body)
    return result


async def py_rtt(pings: int, size: int, secret: bool) -> dict[str, Any]:
    ping = os.urandom(size)

    async def body(a: Any, b: Any) -> dict[str, Any]:
        async def echo() -> None:
            while True:
                await b.send(await b.receive())

        times = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(echo)
            cpu0 = cpu_ms()
            for _ in range(pings):
                t0 = time.perf_counter()
                await a.send(ping)
                got = 0
                while got < size:
                    got += len(await a.receive())
                times.append((time.perf_counter() - t0) * 1e6)
            cpu = cpu_ms() - cpu0
            tg.cancel_scope.cancel()
        times.sort()
        return {
            "pings": pings,
            "median_us": statistics.median(times),
            "p90_us": times[int(len(times) * 0.9)],
            "cpu_us_per_ping": cpu * 1000 / pings,
        }

    result: dict[str, Any] = await py_pair(secret, body)
    return result


def js_run(test: str, secret: bool, mib: int, pings: int) -> dict[str, Any] | None:
    node = shutil.which("node")
    if node is None or not (HERE.parent / "tests/interop/node_modules/udx-native").is_dir():
        return None
    command = [node, str(JS_BENCH), f"--test={test}", f"--mib={mib}", f"--pings={pings}"]
    if secret:
        command.append("--secret")
    out = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=1)
    add_backend_argument(parser)
    args = parser.parse_args()
    info = versions() | {"backend": args.backend}
    for round_ in range(args.rounds):
        for secret in (False, True):
            for test in ("bulk", "rtt"):
                before = load()
                if test == "bulk":
                    py = anyio.run(py_bulk, args.mib, secret, backend=args.backend)
                else:
                    py = anyio.run(py_rtt, args.pings, 64, secret, backend=args.backend)
                emit(
                    {
                        "impl": "py",
                        "test": test,
                        "secret": secret,
                        "round": round_,
                        "load": before,
                        **py,
                        "versions": info,
                    }
                )
                js = js_run(test, secret, args.mib, args.pings)
                if js is not None:
                    emit({**js, "round": round_, "load": load()})


if __name__ == "__main__":
    main()
