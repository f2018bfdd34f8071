"""Discovery and connection latency on a fresh local testnet: the anchor's ``connect.js``.

Per iteration (fresh swarms A and B, a fresh random 32-byte topic):

1. start A and B (each its own ephemeral DHT node on 127.0.0.1, bootstrapped from the
   testnet) concurrently                                  -> ``bootstrap_ms``
2. ``A.join(T, server=True, client=False)``; ``await flushed()``  -> ``a_flush_ms``
3. ``B.join(T, server=False, client=True)`` (t0 just before the join)
   -> ``b_conn_ms``: t0 to the first connection handed to B's ``on_connection``
   -> ``a_conn_ms``: t0 to the first connection handed to A's ``on_connection``
   -> ``b_flush_ms``: t0 to B's ``flushed()`` (lookup done)
4. close both swarms concurrently                         -> ``teardown_ms``

The first ``--warmup`` iterations run but are not counted. Everything binds 127.0.0.1;
``ext_tx_packets_delta`` counts packets that left on other interfaces meanwhile (0 expected).

    python bench/connect.py [--iterations 20] [--warmup 1] [--nodes 10] [--timeout 30000]
        [--backend asyncio|trio]

One JSON line on stdout, with the anchor's keys.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import anyio
from _common import (
    add_backend_argument,
    emit,
    ext_tx_packets,
    now_ms,
    summary,
    versions,
)
from _swarms import SwarmPool

from p2pswarm import PeerInfo, Swarm
from p2pswarm.connection import Connection
from p2pswarm.testing import create_testnet

KEYS = ("bootstrap_ms", "a_flush_ms", "a_conn_ms", "b_conn_ms", "b_flush_ms", "teardown_ms")


def first_connection(swarm: Swarm) -> tuple[anyio.Event, list[float]]:
    """An event set (and the time recorded) when ``swarm`` hands out its first connection."""
    event, at = anyio.Event(), list[float]()

    def on_connection(conn: Connection, info: PeerInfo) -> None:
        if not at:
            at.append(now_ms())
            event.set()

    swarm.on_connection(on_connection)
    return event, at


async def iteration(
    pool: SwarmPool, bootstrap: list[tuple[str, int]], timeout_s: float
) -> dict[str, float]:
    r: dict[str, float] = {}
    tb = now_ms()
    a, b = await pool.start(2, bootstrap=bootstrap, host="127.0.0.1")
    r["bootstrap_ms"] = now_ms() - tb
    try:
        topic = os.urandom(32)
        a_event, a_at = first_connection(a)
        b_event, b_at = first_connection(b)

        ta = now_ms()
        da = a.join(topic, server=True, client=False)
        with anyio.fail_after(timeout_s):
            await da.flushed()
        r["a_flush_ms"] = now_ms() - ta

        b_flush_at: list[float] = []

        async def b_flushed() -> None:
            await db.flushed()
            b_flush_at.append(now_ms())

        t0 = now_ms()
        db = b.join(topic, server=False, client=True)
        with anyio.fail_after(timeout_s):
            async with anyio.create_task_group() as tg:
                tg.start_soon(b_flushed)
                await a_event.wait()
                await b_event.wait()
        r["a_conn_ms"] = a_at[0] - t0
        r["b_conn_ms"] = b_at[0] - t0
        r["b_flush_ms"] = b_flush_at[0] - t0
    finally:
        td = now_ms()
        await pool.stop([a, b])
        r["teardown_ms"] = now_ms() - td
    return r


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tx0 = ext_tx_packets()
    samples: dict[str, list[float]] = {k: [] for k in KEYS}
    errors = 0
    timeout_s = args.timeout / 1000
    tn = now_ms()
    async with create_testnet(args.nodes, host="127.0.0.1") as testnet:
        testnet_ms = now_ms() - tn
        bootstrap = list(testnet.bootstrap)
        t_start = now_ms()
        async with anyio.create_task_group() as tg:
            pool = SwarmPool(tg)
            try:
                for i in range(args.warmup + args.iterations):
                    try:
                        r = await iteration(pool, bootstrap, timeout_s)
                    except Exception as exc:
                        errors += 1
                        sys.stderr.write(f"iteration {i} failed: {exc!r}\n")
                        continue
                    if i < args.warmup:
                        continue
                    for k in KEYS:
                        samples[k].append(round(r[k], 3))
            finally:
                await pool.stop_all()
        total_ms = now_ms() - t_start
    tx1 = ext_tx_packets()
    return {
        "bench": "connect",
        "params": {
            "iterations": args.iterations,
            "warmup": args.warmup,
            "testnet_nodes": args.nodes,
            "backend": args.backend,
        },
        "testnet_create_ms": round(testnet_ms, 1),
        "a_flush_ms": summary(samples["a_flush_ms"]),
        "b_conn_ms": summary(samples["b_conn_ms"]),
        "a_conn_ms": summary(samples["a_conn_ms"]),
        "b_flush_ms": summary(samples["b_flush_ms"]),
        "bootstrap_ms": summary(samples["bootstrap_ms"]),
        "teardown_ms": summary(samples["teardown_ms"]),
        "errors": errors,
        "total_ms": round(total_ms),
        "ext_tx_packets_delta": None if tx0 is None or tx1 is None else tx1 - tx0,
        "versions": versions(),
        "samples": samples,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=30000, help="ms per wait")
    add_backend_argument(parser)
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.warmup < 0 or args.nodes < 1:
        parser.error("iterations and nodes must be >= 1, warmup >= 0")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    os.environ["P2PSWARM_BENCH_BACKEND"] = arguments.backend
    emit(anyio.run(main, arguments, backend=arguments.backend))
