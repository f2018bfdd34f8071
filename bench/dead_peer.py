"""How long a swarm takes to notice a peer that died without a word.

The peer (B) runs in a child process: a swarm that joins a fresh topic as a server and
prints its public key. The parent's swarm (A) joins as a client, connects, and its
``on_connection`` handler reads the connection as an application would. After a 16-byte
echo, the parent stops the child (t0):

Both swarms use the same ``--keepalive`` and ``--idle-timeout`` (the library defaults, 5 s
and 20 s, unless given).

* ``--signal stop`` (SIGSTOP): the process freezes, its kernel keeps the TCP connection
  up, nothing is sent any more. Only A's keep-alive clocks can tell: A must give up within
  its configured ``idle_timeout`` of the last byte it received (B's last keep-alive was at
  most B's ``keepalive`` before t0), so ``detect_ms`` is expected in
  [idle_timeout - keepalive, idle_timeout] plus scheduling noise.
* ``--signal kill`` (SIGKILL): the process dies and its kernel closes the socket; the
  reader sees the end at once (the anchor's ``detect_ms`` of a destroyed stream).

``detect_ms`` is t0 to the end of A's reader; ``closed_ms`` t0 to the swarm dropping the
connection from ``swarm.connections``. ``within_timeout`` counts detections at or under
``idle_timeout`` (+ ``--slack-ms``). With ``--reader none`` A registers no reading handler
(the connection is only held): the iteration then waits ``2 x idle_timeout`` and reports
whether the swarm noticed at all.

    python bench/dead_peer.py [--iterations 3] [--signal stop|kill] [--keepalive 5]
        [--idle-timeout 20] [--reader handler|none] [--nodes 10] [--backend asyncio|trio]

One JSON line on stdout. Everything binds 127.0.0.1; the child is always killed at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
from _common import add_backend_argument, emit, ext_tx_packets, now_ms, summary, versions
from _swarms import SwarmPool

from p2pswarm import PeerInfo, Swarm
from p2pswarm.connection import Connection
from p2pswarm.testing import create_testnet

HERE = Path(__file__).resolve()
#: The child exits by itself after this long, whatever happens to the parent.
CHILD_LIFETIME = 300.0


async def child(args: argparse.Namespace) -> None:
    """B: serve the topic, echo what arrives, print our key, live at most CHILD_LIFETIME."""
    host, port = args.bootstrap.rsplit(":", 1)

    async def echo(conn: Connection, info: PeerInfo) -> None:
        try:
            while True:
                await conn.send(await conn.receive())
        except Exception:
            return

    with anyio.move_on_after(CHILD_LIFETIME):
        async with Swarm(
            bootstrap=[(host, int(port))],
            host="127.0.0.1",
            keepalive=args.keepalive,
            idle_timeout=args.idle_timeout,
        ) as swarm:
            swarm.on_connection(echo)
            await swarm.join(bytes.fromhex(args.topic), server=True, client=False).flushed()
            sys.stdout.write(swarm.key_pair.public_key.hex() + "\n")
            sys.stdout.flush()
            await anyio.sleep(CHILD_LIFETIME)


class Watched:
    """A's side: the first connection, its reader, and when the swarm let it go."""

    def __init__(self, swarm: Swarm, *, read: bool) -> None:
        self.swarm = swarm
        self.conn: Connection | None = None
        self.arrived = anyio.Event()
        self.echoed = anyio.Event()
        self.reader_ended = anyio.Event()
        self.reader_end_at: float | None = None
        self.reader_error = ""
        self.dropped = anyio.Event()
        self.dropped_at: float | None = None
        if read:
            swarm.on_connection(self._read)
        else:
            swarm.on_connection(self._hold)
        swarm.on_update(self._update)

    def _hold(self, conn: Connection, info: PeerInfo) -> None:
        if self.conn is None:
            self.conn = conn
            self.arrived.set()

    async def _read(self, conn: Connection, info: PeerInfo) -> None:
        if self.conn is not None:
            return
        self._hold(conn, info)
        received = 0
        try:
            while True:
                received += len(await conn.receive())
                if received >= 16:
                    self.echoed.set()
        except Exception as exc:
            self.reader_error = type(exc).__name__
        finally:
            self.reader_end_at = now_ms()
            self.reader_ended.set()

    def _update(self) -> None:
        conn = self.conn
        if conn is not None and self.dropped_at is None and conn not in self.swarm.connections:
            self.dropped_at = now_ms()
            self.dropped.set()


async def iteration(
    pool: SwarmPool, bootstrap: list[tuple[str, int]], args: argparse.Namespace
) -> dict[str, Any]:
    topic = os.urandom(32)
    command = [
        sys.executable,
        str(HERE),
        "--child",
        "--bootstrap",
        f"{bootstrap[0][0]}:{bootstrap[0][1]}",
        "--topic",
        topic.hex(),
        "--backend",
        args.backend,
        "--keepalive",
        str(args.keepalive),
        "--idle-timeout",
        str(args.idle_timeout),
    ]
    process = await anyio.open_process(command, stdout=subprocess.PIPE, stderr=None)
    (a,) = await pool.start(
        1,
        bootstrap=bootstrap,
        host="127.0.0.1",
        keepalive=args.keepalive,
        idle_timeout=args.idle_timeout,
    )
    try:
        assert process.stdout is not None
        with anyio.fail_after(30):
            line = b""
            async for chunk in process.stdout:
                line += chunk
                if b"\n" in line:
                    break
        watched = Watched(a, read=args.reader == "handler")
        a.join(topic, server=False, client=True)
        with anyio.fail_after(30):
            await watched.arrived.wait()
        assert watched.conn is not None
        if args.reader == "handler":
            with anyio.fail_after(10):
                await watched.conn.send(b"\x01" * 16)
                await watched.echoed.wait()
        t0 = now_ms()
        process.send_signal(signal.SIGSTOP if args.signal == "stop" else signal.SIGKILL)
        limit = 2 * args.idle_timeout + 5
        with anyio.move_on_after(limit):
            await watched.dropped.wait()
            if args.reader == "handler":
                await watched.reader_ended.wait()
        detect = None if watched.reader_end_at is None else watched.reader_end_at - t0
        closed = None if watched.dropped_at is None else watched.dropped_at - t0
        return {
            "detect_ms": detect,
            "closed_ms": closed,
            "error": watched.reader_error,
            "detected": closed is not None,
        }
    finally:
        await pool.stop([a])
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tx0 = ext_tx_packets()
    detect: list[float] = []
    closed: list[float] = []
    errors = 0
    undetected = 0
    reasons: dict[str, int] = {}
    async with (
        create_testnet(args.nodes, host="127.0.0.1") as testnet,
        anyio.create_task_group() as tg,
    ):
        pool = SwarmPool(tg)
        try:
            for i in range(args.iterations):
                try:
                    r = await iteration(pool, list(testnet.bootstrap), args)
                except Exception as exc:
                    errors += 1
                    sys.stderr.write(f"iteration {i} failed: {exc!r}\n")
                    continue
                if not r["detected"]:
                    undetected += 1
                    continue
                closed.append(round(r["closed_ms"], 3))
                if r["detect_ms"] is not None:
                    detect.append(round(r["detect_ms"], 3))
                reasons[r["error"] or "none"] = reasons.get(r["error"] or "none", 0) + 1
        finally:
            await pool.stop_all()
    tx1 = ext_tx_packets()
    bound = args.idle_timeout * 1000 + args.slack_ms
    measured = detect if args.reader == "handler" else closed
    return {
        "bench": "dead_peer",
        "params": {
            "iterations": args.iterations,
            "signal": args.signal,
            "keepalive_s": args.keepalive,
            "idle_timeout_s": args.idle_timeout,
            "reader": args.reader,
            "slack_ms": args.slack_ms,
            "testnet_nodes": args.nodes,
            "backend": args.backend,
        },
        "detect_ms": summary(detect),
        "closed_ms": summary(closed),
        "within_timeout": sum(1 for v in measured if v <= bound),
        "undetected": undetected,
        "reader_errors": reasons,
        "errors": errors,
        "ext_tx_packets_delta": None if tx0 is None or tx1 is None else tx1 - tx0,
        "versions": versions(),
        "samples": {"detect_ms": detect, "closed_ms": closed},
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--signal", choices=("stop", "kill"), default="stop")
    parser.add_argument("--keepalive", type=float, default=5.0, help="A's, seconds")
    parser.add_argument("--idle-timeout", type=float, default=20.0, help="A's, seconds")
    parser.add_argument("--reader", choices=("handler", "none"), default="handler")
    parser.add_argument("--slack-ms", type=float, default=50.0)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    add_backend_argument(parser)
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.idle_timeout <= 0 or args.keepalive <= 0:
        parser.error("iterations, keepalive and idle-timeout must be positive")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    os.environ["P2PSWARM_BENCH_BACKEND"] = arguments.backend
    if arguments.child:
        anyio.run(child, arguments, backend=arguments.backend)
    else:
        emit(anyio.run(main, arguments, backend=arguments.backend))
