"""Bulk throughput, 64-byte round trips and handshake rate over p2pswarm Connections.

The definitions and JSON keys are the JS Hyperswarm anchor's (``throughput.js`` and
``proto.js`` in ``shared/anchors/js-hyperswarm``), so its ``aggregate.js`` reads our lines:

* A serves, B drives. B first sends ``--pings`` pings of ``--ping-size`` bytes (first byte
  0x01, A echoes them; one in flight) after ``--ping-warmup`` uncounted ones -> ``rtt_us``.
* Then B sends the 13-byte request ``0x02 | u64be total | u32be chunk``; A writes ``--mib``
  MiB of 0xab in ``--chunk-kib`` KiB writes, each ``send`` returning only once the kernel
  took the bytes (back-pressure). B's clock runs from the request to the last byte ->
  ``mb_per_s`` (MB = 10^6 bytes) and ``mib_per_s``.
* CPU is whole-process user+sys (``getrusage``), RSS is VmRSS, as ``process.cpuUsage()``
  and ``process.memoryUsage().rss`` in the anchor.
* Extra: ``handshakes_per_s``, sequential TCP connects + IK handshakes from B to A (each
  until B's Connection is ready, then closed), over ``--handshakes`` iterations.

Layouts (``--mode``): ``single`` runs A and B in one process and one event loop; ``split``
runs B in a child process. The anchor's streams run over UDX found through a DHT testnet;
ours run over TCP on 127.0.0.1 found by address (the DHT plays no part once connected).

Mixed runs against the real JS secret-stream over TCP (``bench/js_tcp_peer.js``, using
``tests/interop/node_modules``): ``--peer=js-server`` (JS is A, we drive) and
``--peer=js-client`` (we serve, JS drives). Both are two processes, like ``split``.

    python bench/throughput.py [--mode single|split] [--peer py|js-server|js-client]
        [--mib 256] [--chunk-kib 64] [--pings 1000] [--ping-warmup 100] [--ping-size 64]
        [--handshakes 300] [--backend asyncio|trio] [--uvloop]

One JSON line per run on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import struct
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio
from _common import (
    cpu_ms,
    ext_tx_packets,
    now_ms,
    quantile,
    rss_mib,
    summary,
    versions as common_versions,
)
from anyio.streams.buffered import BufferedByteReceiveStream

from p2pswarm import KeyPair, connect_tcp, create_tcp_listener
from p2pswarm.connection import Connection
from p2pswarm.protocol import secret_stream

HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent
JS_PEER = HERE / "js_tcp_peer.js"
REQUEST = struct.Struct(">BQI")
PING, BULK = 0x01, 0x02
#: Connection options: the library's defaults (keep-alives every 5 s, a 20 s idle timeout,
#: as Hyperswarm's 5 s keep-alive), unless --no-keepalive turns both off.
OPTIONS: dict[str, Any] = {}

# -- the anchor's statistics and accounting: bench/_common.py; versions carry our options --


def versions(args: argparse.Namespace) -> dict[str, Any]:
    """The shared version record, plus the options that decide this benchmark's figures."""
    record: dict[str, Any] = dict(common_versions())
    uvloop = None
    if args.uvloop:
        try:
            uvloop = metadata.version("uvloop")
        except metadata.PackageNotFoundError:
            uvloop = None
    record.update(
        backend=args.backend,
        uvloop=uvloop,
        secretstream=secret_stream.Pusher.__module__,
    )
    return record


# -- the protocol (proto.js) -----------------------------------------------------------------


async def serve_connection(conn: Connection, report: Callable[[dict[str, float]], None]) -> None:
    """A: echo pings; on the bulk request write the bytes; then read until B closes."""
    bulk_done = False
    while True:
        try:
            data = await conn.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return
        if bulk_done:
            continue
        if data[0] == PING:
            await conn.send(data)
        elif data[0] == BULK and len(data) >= REQUEST.size:
            _, total, chunk_size = REQUEST.unpack_from(data)
            chunk = b"\xab" * chunk_size
            t0, c0 = now_ms(), cpu_ms()
            sent = 0
            while sent < total:
                n = min(chunk_size, total - sent)
                await conn.send(chunk if n == chunk_size else chunk[:n])
                sent += n
            report({"a_write_ms": now_ms() - t0, "a_cpu_ms_during_write": cpu_ms() - c0})
            bulk_done = True


async def drive_connection(conn: Connection, args: argparse.Namespace) -> dict[str, Any]:
    """B: the ping phase, then the bulk phase, timed here."""
    size = args.ping_size
    ping = bytes([PING]) + b"\x55" * (size - 1)
    rtts: list[float] = []
    extra = 0  # bytes of the next echo already read (never, with one ping in flight)
    tp0 = now_ms()
    for i in range(args.ping_warmup + args.pings):
        t = time.perf_counter_ns()
        await conn.send(ping)
        got = extra
        while got < size:
            got += len(await conn.receive())
        extra = got - size
        if i >= args.ping_warmup:
            rtts.append((time.perf_counter_ns() - t) / 1000)
    res: dict[str, Any] = {"ping_phase_ms": now_ms() - tp0}
    res["rtt_us"] = summary(rtts, 1)
    res["rtt_us"]["p99"] = round(quantile(rtts, 0.99) or math.nan, 1)

    total = args.mib * 1024 * 1024
    c0, t0 = cpu_ms(), now_ms()
    await conn.send(REQUEST.pack(BULK, total, args.chunk_kib * 1024))
    got = 0
    while got < total:
        got += len(await conn.receive())
    ms = now_ms() - t0
    res.update(
        bulk_bytes=total,
        bulk_ms=ms,
        mb_per_s=total / 1e6 / (ms / 1000),
        mib_per_s=total / 1048576 / (ms / 1000),
        b_cpu_ms_during_bulk=cpu_ms() - c0,
    )
    return res


async def handshake_rate(port: int, remote: bytes, count: int) -> dict[str, Any]:
    """Sequential TCP connect + IK handshakes to A: ``count`` of them, one at a time."""
    key_pair = KeyPair.generate()
    times: list[float] = []
    t0 = now_ms()
    for _ in range(count):
        t = now_ms()
        conn = await connect_tcp(HOST, port, key_pair=key_pair, remote_public_key=remote, **OPTIONS)
        times.append(now_ms() - t)
        await conn.aclose()
    elapsed = now_ms() - t0
    return {"n": count, "per_s": count / (elapsed / 1000) if count else None, "ms": summary(times)}


async def run_b(args: argparse.Namespace, port: int, remote: bytes) -> dict[str, Any]:
    """Everything B does: connect (IK), drive, then the handshake rate."""
    t0 = now_ms()
    conn = await connect_tcp(HOST, port, remote_public_key=remote, **OPTIONS)
    connect_ms = now_ms() - t0
    async with conn:
        res = await drive_connection(conn, args)
        res["b_connect_ms"] = connect_ms
        res["b_rss_mib"] = rss_mib()
        await conn.send_eof()
    if args.handshakes:
        res["handshakes"] = await handshake_rate(port, remote, args.handshakes)
    return res


# -- layouts ---------------------------------------------------------------------------------


def child_command(args: argparse.Namespace, port: int, remote: bytes) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--role=b",
        f"--port={port}",
        f"--remote-public-key={remote.hex()}",
        f"--mib={args.mib}",
        f"--chunk-kib={args.chunk_kib}",
        f"--pings={args.pings}",
        f"--ping-warmup={args.ping_warmup}",
        f"--ping-size={args.ping_size}",
        f"--handshakes={args.handshakes}",
        f"--backend={args.backend}",
        *(["--uvloop"] if args.uvloop else []),
        *(["--no-keepalive"] if args.no_keepalive else []),
    ]


def js_command(args: argparse.Namespace, role: str, **options: object) -> list[str]:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not installed: mixed runs need it")
    return [
        node,
        str(JS_PEER),
        f"--role={role}",
        f"--mib={args.mib}",
        f"--chunk-kib={args.chunk_kib}",
        f"--pings={args.pings}",
        f"--ping-warmup={args.ping_warmup}",
        f"--ping-size={args.ping_size}",
        f"--timeout={int(args.timeout * 1000)}",
        *(f"--{k.replace('_', '-')}={v}" for k, v in options.items()),
    ]


def last_json(output: bytes, event: str | None = None) -> dict[str, Any]:
    for line in reversed(output.decode().splitlines()):
        if line.startswith("{"):
            message: dict[str, Any] = json.loads(line)
            if event is None or message.get("event") == event:
                return message
    raise RuntimeError(f"no JSON line{' ' + event if event else ''} in: {output[-2000:]!r}")


async def run_with_python_a(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """A is ours (a listener); B is in this process, a child process, or JS."""
    a_report: dict[str, Any] = {}
    reported = anyio.Event()

    def report(values: dict[str, float]) -> None:
        a_report.update(values)
        reported.set()

    async def handler(conn: Connection) -> None:
        await serve_connection(conn, report)

    listener = await create_tcp_listener(local_host=HOST, **OPTIONS)
    port, remote = listener.local_address[1], listener.public_key
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        with anyio.fail_after(args.timeout):
            if args.peer == "js-client":
                command = js_command(args, "client", port=port, remote_public_key=remote.hex())
                done = await anyio.run_process(command, stderr=None)
                b_res = last_json(done.stdout, "result")
            elif args.mode == "split":
                done = await anyio.run_process(child_command(args, port, remote), stderr=None)
                b_res = last_json(done.stdout)
            else:
                b_res = await run_b(args, port, remote)
            await reported.wait()
        tg.cancel_scope.cancel()
    return a_report, b_res


async def run_with_js_a(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """A is the JS secret-stream (``js_tcp_peer.js --role=server``); B is us, here."""
    command = js_command(args, "server", port=0)
    async with await anyio.open_process(command, stderr=None) as process:
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        with anyio.fail_after(args.timeout):
            listening = json.loads(await lines.receive_until(b"\n", 1 << 16))
            if listening.get("event") != "listening":
                raise RuntimeError(f"js_tcp_peer.js: {listening!r}")
            port, remote = int(listening["port"]), bytes.fromhex(listening["publicKey"])
            args.handshakes = 0  # the JS server serves one connection
            b_res = await run_b(args, port, remote)
            a_report = json.loads(await lines.receive_until(b"\n", 1 << 16))
            if a_report.get("event") != "a_report":
                raise RuntimeError(f"js_tcp_peer.js: {a_report!r}")
            await process.wait()
    return a_report, b_res


async def main_a(args: argparse.Namespace) -> None:
    tx0 = ext_tx_packets()
    if args.peer == "js-server":
        a_report, b_res = await run_with_js_a(args)
    else:
        a_report, b_res = await run_with_python_a(args)
    a_rss = rss_mib()
    tx1 = ext_tx_packets()
    handshakes = b_res.get("handshakes")
    if args.peer == "js-server":  # this process is B; A is node
        rss = {"a_process": a_report.get("a_rss_mib"), "b_process": b_res["b_rss_mib"]}
    elif args.mode == "split" or args.peer == "js-client":
        rss = {"a_process": a_rss, "b_process": b_res["b_rss_mib"]}
    else:
        rss = {"process": a_rss}

    def r2(x: float) -> float:
        return round(x, 2)

    out = {
        "bench": "throughput",
        "params": {
            "mode": args.mode if args.peer == "py" else "split",
            "mib": args.mib,
            "chunk_kib": args.chunk_kib,
            "pings": args.pings,
            "ping_warmup": args.ping_warmup,
            "ping_size": args.ping_size,
            "transport": "tcp",
            "implementation": "p2pswarm",
            "peer": args.peer,
            "keepalive": not args.no_keepalive,
        },
        "mb_per_s": r2(b_res["mb_per_s"]),
        "mib_per_s": r2(b_res["mib_per_s"]),
        "bulk_ms": r2(b_res["bulk_ms"]),
        "rtt_us": b_res["rtt_us"],
        "ping_phase_ms": r2(b_res["ping_phase_ms"]),
        "a_write_ms": r2(a_report["a_write_ms"]),
        "a_cpu_ms_during_write": r2(a_report["a_cpu_ms_during_write"]),
        "b_cpu_ms_during_bulk": r2(b_res["b_cpu_ms_during_bulk"]),
        "b_connect_ms": r2(b_res["b_connect_ms"]),
        "handshakes_per_s": r2(handshakes["per_s"]) if handshakes else None,
        "handshakes": handshakes,
        "rss_mib": rss,
        "ext_tx_packets_delta": None if tx0 is None or tx1 is None else tx1 - tx0,
        "versions": versions(args),
    }
    sys.stdout.write(json.dumps(out) + "\n")


async def main_b(args: argparse.Namespace) -> None:
    res = await run_b(args, args.port, bytes.fromhex(args.remote_public_key))
    sys.stdout.write(json.dumps(res) + "\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("single", "split"), default="single")
    parser.add_argument("--peer", choices=("py", "js-server", "js-client"), default="py")
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--chunk-kib", type=int, default=64)
    parser.add_argument("--pings", type=int, default=1000)
    parser.add_argument("--ping-warmup", type=int, default=100)
    parser.add_argument("--ping-size", type=int, default=64)
    parser.add_argument("--handshakes", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for a whole run")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument(
        "--no-keepalive",
        action="store_true",
        help="connections without keep-alives and idle timeout (the library default has both)",
    )
    parser.add_argument(
        "--uvloop", action="store_true", help="asyncio on uvloop (not a dependency)"
    )
    parser.add_argument("--role", choices=("a", "b"), default="a", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--remote-public-key", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ping_size < 1 or args.mib < 1 or args.chunk_kib < 1:
        parser.error("--ping-size, --mib and --chunk-kib must be positive")
    if args.uvloop and args.backend != "asyncio":
        parser.error("--uvloop needs --backend asyncio")
    return args


def main() -> None:
    args = parse_args()
    if args.no_keepalive:
        OPTIONS.update(keepalive=None, idle_timeout=None)
    backend_options: dict[str, Any] = {}
    if args.uvloop:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            raise SystemExit("--uvloop: uvloop is not installed (pip install uvloop)") from None
        backend_options["use_uvloop"] = True
    entry = main_b if args.role == "b" else main_a
    anyio.run(entry, args, backend=args.backend, backend_options=backend_options)


if __name__ == "__main__":
    main()
