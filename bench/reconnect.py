"""Time for a swarm to re-establish a dropped connection: the anchor's ``reconnect.js``.

Per iteration (fresh swarms A and B, a fresh topic, so the retry state starts clean):

* ``--via topic``: A joins T ``server=True, client=False`` and is flushed; B joins T
  ``server=False, client=True``.
* ``--via join_peer`` (the anchor's ``joinPeer``): ``A.listen()``; ``B.join_peer(A's key)``.

Once connected, B sends 16 bytes and A echoes them (the stream carried data both ways),
then one side closes its connection (t0), as the anchor's ``conn.destroy()``:
``--side client`` (B), ``server`` (A) or ``both`` (alternately, reported separately).

* ``detect_ms``: t0 to the other side's reader seeing the stream end
* ``b_reconnect_ms`` / ``a_reconnect_ms``: t0 to the next connection handed to B / A

With ``--drops K`` the same pair is dropped K times in a row, each measured: the back-off
escalation for connections that lived under 15 s. Results are under
``results.<side>_drop<k>``, as the anchor's. The retry policy is the library's default
(S 1-1.5 s, M 5-6 s, L 15-17 s, plus jitter, batched in 0.66 x ticks), the same constants as
Hyperswarm, so the figures must land in the anchor's windows; much faster means the policy
diverged.

Each side's ``on_connection`` handler reads the connection for as long as it is open (A
echoes what it reads), as an application would; the benchmark writes through B's.

    python bench/reconnect.py [--iterations 10] [--side both|client|server]
        [--via topic|join_peer] [--drops 1] [--nodes 10] [--timeout 60000]
        [--backend asyncio|trio]

One JSON line on stdout, with the anchor's keys.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import anyio
from _common import add_backend_argument, emit, ext_tx_packets, now_ms, summary, versions
from _swarms import SwarmPool

from p2pswarm import PeerInfo, Swarm
from p2pswarm.connection import Connection
from p2pswarm.testing import create_testnet

ECHO = b"\x01" * 16


@dataclass(eq=False)
class Link:
    """One connection as a side's handler saw it."""

    conn: Connection
    at: float
    received: int = 0
    ended_at: float | None = None
    got_echo: anyio.Event = field(default_factory=anyio.Event)
    ended: anyio.Event = field(default_factory=anyio.Event)


class Side:
    """A swarm's connections in arrival order; A's handler echoes, B's counts."""

    def __init__(self, swarm: Swarm, *, echo: bool) -> None:
        self.swarm = swarm
        self.echo = echo
        self.links: list[Link] = []
        self._arrived = anyio.Event()
        swarm.on_connection(self._handle)

    async def _handle(self, conn: Connection, info: PeerInfo) -> None:
        link = Link(conn, now_ms())
        self.links.append(link)
        self._arrived.set()
        try:
            while True:
                data = await conn.receive()
                link.received += len(data)
                if self.echo:
                    await conn.send(data)
                elif link.received >= len(ECHO):
                    link.got_echo.set()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        except Exception as exc:  # a peer's fault ends only this connection
            sys.stderr.write(f"reader ended: {exc!r}\n")
        finally:
            link.ended_at = now_ms()
            link.ended.set()

    async def next_link(self, count: int) -> Link:
        """Wait until this side has seen ``count`` connections; return the last."""
        while len(self.links) < count:
            self._arrived = anyio.Event()
            await self._arrived.wait()
        return self.links[count - 1]


async def iteration(
    pool: SwarmPool,
    bootstrap: list[tuple[str, int]],
    side: str,
    args: argparse.Namespace,
) -> list[dict[str, float]]:
    a, b = await pool.start(2, bootstrap=bootstrap, host="127.0.0.1")
    try:
        sa, sb = Side(a, echo=True), Side(b, echo=False)
        with anyio.fail_after(30):
            if args.via == "join_peer":
                await a.listen()
                b.join_peer(a.key_pair.public_key)
            else:
                topic = os.urandom(32)
                await a.join(topic, server=True, client=False).flushed()
                b.join(topic, server=False, client=True)
            ac, bc = await sa.next_link(1), await sb.next_link(1)
        results = []
        for d in range(args.drops):
            with anyio.fail_after(10):
                await bc.conn.send(ECHO)
                await bc.got_echo.wait()
            victim, other = (bc, ac) if side == "client" else (ac, bc)
            t0 = now_ms()
            await victim.conn.aclose()
            with anyio.fail_after(args.timeout / 1000):
                await other.ended.wait()
                an = await sa.next_link(d + 2)
                bn = await sb.next_link(d + 2)
            assert other.ended_at is not None
            results.append(
                {
                    "drop": d + 1,
                    "detect_ms": other.ended_at - t0,
                    "a_reconnect_ms": an.at - t0,
                    "b_reconnect_ms": bn.at - t0,
                }
            )
            ac, bc = an, bn
        return results
    finally:
        await pool.stop([a, b])


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tx0 = ext_tx_packets()
    sides = ["client", "server"] if args.side == "both" else [args.side]
    keys = ("detect_ms", "a_reconnect_ms", "b_reconnect_ms")
    samples: dict[str, dict[str, list[float]]] = {
        f"{side}_drop{d}": {k: [] for k in keys} for side in sides for d in range(1, args.drops + 1)
    }
    errors = 0
    async with create_testnet(args.nodes, host="127.0.0.1") as testnet:
        bootstrap = list(testnet.bootstrap)
        async with anyio.create_task_group() as tg:
            pool = SwarmPool(tg)
            try:
                for i in range(args.iterations):
                    for side in sides:
                        try:
                            results = await iteration(pool, bootstrap, side, args)
                        except Exception as exc:
                            errors += 1
                            sys.stderr.write(f"iteration {i} ({side}) failed: {exc!r}\n")
                            continue
                        for r in results:
                            bucket = samples[f"{side}_drop{int(r['drop'])}"]
                            for k in keys:
                                bucket[k].append(round(r[k], 3))
            finally:
                await pool.stop_all()
    tx1 = ext_tx_packets()
    return {
        "bench": "reconnect",
        "params": {
            "iterations": args.iterations,
            "side": args.side,
            "via": args.via,
            "drops": args.drops,
            "testnet_nodes": args.nodes,
            "backend": args.backend,
        },
        "results": {
            name: {k: summary(values) for k, values in bucket.items()}
            for name, bucket in samples.items()
        },
        "errors": errors,
        "ext_tx_packets_delta": None if tx0 is None or tx1 is None else tx1 - tx0,
        "versions": versions(),
        "samples": samples,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--side", choices=("both", "client", "server"), default="both")
    parser.add_argument("--via", choices=("topic", "join_peer", "joinPeer"), default="topic")
    parser.add_argument("--drops", type=int, default=1)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=60000, help="ms per reconnect")
    add_backend_argument(parser)
    args = parser.parse_args(argv)
    if args.via == "joinPeer":
        args.via = "join_peer"
    if args.iterations < 1 or args.drops < 1 or args.nodes < 1:
        parser.error("iterations, drops and nodes must be >= 1")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    os.environ["P2PSWARM_BENCH_BACKEND"] = arguments.backend
    emit(anyio.run(main, arguments, backend=arguments.backend))
