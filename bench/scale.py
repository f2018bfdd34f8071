"""N swarms, one topic, full mesh, one process: the anchor's ``scale.js``.

1. fresh local testnet (``--nodes``, default 10)
2. start N swarms (each its own ephemeral DHT node on 127.0.0.1) concurrently
   -> ``bootstrap_all_ms``
3. t0; every swarm joins topic T with ``server=True, client=True``, per ``--join``:

   * ``sequential``: swarm i+1 joins after swarm i's ``flushed()``;
   * ``simultaneous``: all join at once (``--stagger`` ms apart). JS Hyperswarm finds
     nobody here for 10 minutes; p2pswarm's follow-up lookup must find everyone;
   * ``refresh``: all join at once, every ``flushed()`` is awaited, then every swarm calls
     ``refresh()`` at once (everyone dials everyone: dedup exercised).

4. the open connections of every swarm are counted on every update (a synchronous
   ``on_update`` callback, as the anchor's ``'update'`` listener) and every 20 ms:
   ``t_first_all_ms`` (every swarm has one), ``t50_ms`` / ``t90_ms`` / ``t99_ms`` (that
   share of the N(N-1) connection ends open), ``full_mesh_ms`` (every swarm has N-1),
   ``flushed_all_ms``. Stops at full mesh, or when every join is flushed and the count has
   not changed for ``--stable-ms`` (``stop_reason`` 'stable'), or at ``--timeout``;
   ``last_change_ms`` is when the count last changed.
5. settle ``--settle`` ms, count again, RSS after a forced collection.
6. close every swarm concurrently -> ``teardown_ms``.

Defaults as the anchor reports Hyperswarm's: ``max_peers`` 64, ``max_parallel`` 3, no caps
per direction. CPU is whole-process user+sys (testnet and every swarm share one loop),
RSS is VmRSS after ``gc.collect()``; ``rss_mib.per_swarm_after_mesh`` is
(settled - after testnet) / N, the anchor's definition.

    python bench/scale.py [--n 20] [--join sequential|refresh|simultaneous] [--nodes 10]
        [--timeout 60000] [--settle 3000] [--stagger 0] [--stable-ms 10000]
        [--backend asyncio|trio]

One JSON line on stdout, with the anchor's keys.
"""

from __future__ import annotations

import argparse
import gc
import os
from collections import Counter
from typing import Any

import anyio
import anyio.abc
from _common import (
    add_backend_argument,
    cpu_ms,
    emit,
    ext_tx_packets,
    now_ms,
    rss_mib,
    versions,
)
from _swarms import SwarmPool

from p2pswarm import PeerDiscovery, Swarm
from p2pswarm.testing import create_testnet


def swarm_limits(swarm: Swarm) -> dict[str, Any]:
    """The dial limits in force, reported with the anchor's names (None is "Infinity")."""
    limits: Any = getattr(swarm, "limits", swarm)

    def get(*names: str) -> Any:
        for name in names:
            if hasattr(limits, name):
                value = getattr(limits, name)
                return "Infinity" if value is None else value
        return "unknown"

    return {
        "max_peers": get("max_peers"),
        "max_parallel": get("max_parallel"),
        "max_client": str(get("max_client", "max_client_connections")),
        "max_server": str(get("max_server", "max_server_connections")),
    }


class GCWatch:
    """Python's garbage collector while meshing, from ``gc.callbacks``: collections per
    generation, total and longest pause, objects tracked at the end."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.pause_ms = 0.0
        self.max_pause_ms = 0.0
        self._started: float | None = None
        self.active = False

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if not self.active:
            return
        if phase == "start":
            self._started = now_ms()
        elif self._started is not None:
            pause = now_ms() - self._started
            self._started = None
            self.counts[info["generation"]] += 1
            self.pause_ms += pause
            self.max_pause_ms = max(self.max_pause_ms, pause)

    def report(self, baseline: int, tracked: int, links: float) -> dict[str, Any]:
        return {
            "collections": self.counts,
            "pause_ms": round(self.pause_ms, 1),
            "max_pause_ms": round(self.max_pause_ms, 1),
            "tracked_objects_at_mark": tracked,
            "tracked_objects_before_join": baseline,
            # what the mesh added (connections, their tasks, DHT state), per connection end
            "added_per_connection_end": round((tracked - baseline) / (2 * links), 1)
            if links
            else None,
        }


def census() -> Counter[str]:
    """Tracked objects by type name (``--gc-census``)."""
    return Counter(type(o).__qualname__ for o in gc.get_objects())


def diff(before: Counter[str], after: Counter[str], top: int = 30) -> dict[str, int]:
    added = after.copy()
    added.subtract(before)
    return dict(added.most_common(top))


def r1(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


class MeshWatch:
    """Counts open connection ends on every update; records the anchor's marks."""

    def __init__(self, swarms: list[Swarm]) -> None:
        self.swarms = swarms
        n = len(swarms)
        self.target = n * (n - 1)
        self.marks: dict[str, float | None] = {
            "t_first_all_ms": None,
            "t50_ms": None,
            "t90_ms": None,
            "t99_ms": None,
            "full_mesh_ms": None,
        }
        self.t0: float | None = None
        self.cpu0 = 0.0
        self.last_ends = 0
        self.last_change_at: float | None = None
        self.cpu_ms_at_last_change: float | None = None
        self.full = anyio.Event()

    def check(self) -> None:
        if self.t0 is None:
            return
        ends = 0
        all_have_one = True
        for swarm in self.swarms:
            c = len(swarm.connections)
            ends += c
            if c == 0:
                all_have_one = False
        t = now_ms() - self.t0
        if ends != self.last_ends:
            self.last_ends = ends
            self.last_change_at = t
            self.cpu_ms_at_last_change = cpu_ms() - self.cpu0
        marks = self.marks
        if all_have_one and marks["t_first_all_ms"] is None:
            marks["t_first_all_ms"] = t
        for key, share in (("t50_ms", 0.5), ("t90_ms", 0.9), ("t99_ms", 0.99)):
            if ends >= self.target * share and marks[key] is None:
                marks[key] = t
        if (
            ends >= self.target
            and marks["full_mesh_ms"] is None
            and all(len(s.connections) >= len(self.swarms) - 1 for s in self.swarms)
        ):
            marks["full_mesh_ms"] = t
            self.full.set()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    n = args.n
    tx0 = ext_tx_packets()
    rss_start = rss_mib()
    tn = now_ms()
    async with create_testnet(args.nodes, host="127.0.0.1") as testnet:
        testnet_ms = now_ms() - tn
        rss_testnet = rss_mib()
        async with anyio.create_task_group() as tg:
            pool = SwarmPool(tg)
            try:
                out = await mesh(args, tg, pool, list(testnet.bootstrap))
            finally:
                await pool.stop_all()
    tx1 = ext_tx_packets()
    out["testnet_create_ms"] = r1(testnet_ms)
    rss = out["rss_mib"]
    rss["node_start"] = rss_start
    rss["after_testnet"] = rss_testnet
    rss["per_swarm_after_mesh"] = round((rss["settled"] - rss_testnet) / n, 2)
    out["ext_tx_packets_delta"] = None if tx0 is None or tx1 is None else tx1 - tx0
    out["versions"] = versions()
    return out


async def mesh(
    args: argparse.Namespace,
    tg: anyio.abc.TaskGroup,
    pool: SwarmPool,
    bootstrap: list[tuple[str, int]],
) -> dict[str, Any]:
    n = args.n
    tb = now_ms()
    swarms = await pool.start(n, bootstrap=bootstrap, host="127.0.0.1")
    bootstrap_all_ms = now_ms() - tb
    rss_baseline = rss_mib(collect=True)
    tracked_baseline = len(gc.get_objects())
    census0 = census() if args.gc_census else None

    watch = MeshWatch(swarms)
    for swarm in swarms:
        swarm.on_update(watch.check)
    peak_rss = [rss_baseline]

    async def poll() -> None:
        while True:  # cancelled after the settle period
            await anyio.sleep(0.020)
            watch.check()
            peak_rss[0] = max(peak_rss[0], rss_mib())

    topic = os.urandom(32)
    discoveries: list[PeerDiscovery] = []
    flushed_all_ms: float | None = None
    refresh_start_ms: float | None = None
    stop_reason: str | None = None

    gc_watch = GCWatch()
    gc.callbacks.append(gc_watch)
    async with anyio.create_task_group() as bench_tg:
        bench_tg.start_soon(poll)
        gc_watch.active = True
        watch.cpu0 = cpu_ms()
        t0 = watch.t0 = now_ms()

        async def join_all() -> None:
            nonlocal flushed_all_ms, refresh_start_ms
            if args.join == "sequential":
                for swarm in swarms:
                    discovery = swarm.join(topic, server=True, client=True)
                    discoveries.append(discovery)
                    await discovery.flushed()
                flushed_all_ms = now_ms() - t0
                return
            for swarm in swarms:
                discoveries.append(swarm.join(topic, server=True, client=True))
                if args.stagger > 0:
                    await anyio.sleep(args.stagger / 1000)
            async with anyio.create_task_group() as flush_tg:
                for discovery in discoveries:
                    flush_tg.start_soon(discovery.flushed)
            flushed_all_ms = now_ms() - t0
            if args.join == "refresh":
                refresh_start_ms = now_ms() - t0
                for discovery in discoveries:
                    tg.start_soon(discovery.refresh)  # not awaited, as the anchor's

        bench_tg.start_soon(join_all)
        # Stop at full mesh; or once every join is flushed and nothing changed for
        # --stable-ms; or at --timeout. Checked every 50 ms, as the anchor.
        while True:
            t = now_ms() - t0
            if watch.full.is_set():
                stop_reason = "full_mesh"
            elif t >= args.timeout:
                stop_reason = "timeout"
            elif flushed_all_ms is not None:
                since = max(watch.last_change_at or 0.0, flushed_all_ms)
                if t - since >= args.stable_ms:
                    stop_reason = "stable"
            if stop_reason is not None:
                break
            with anyio.move_on_after(0.050):
                await watch.full.wait()
        timed_out = stop_reason != "full_mesh"
        last_change_at_stop = watch.last_change_at
        cpu_ms_at_last_change_stop = watch.cpu_ms_at_last_change
        stop_ms = now_ms() - t0
        cpu_ms_to_stop = cpu_ms() - watch.cpu0
        gc_watch.active = False
        gc.callbacks.remove(gc_watch)
        tracked_at_mark = len(gc.get_objects())
        census1 = census() if args.gc_census else None
        counts_at_mark = [len(s.connections) for s in swarms]
        rss_at_mark = rss_mib()

        await anyio.sleep(args.settle / 1000)
        watch.check()
        bench_tg.cancel_scope.cancel()
    counts_settled = [len(s.connections) for s in swarms]
    rss_settled = rss_mib(collect=True)

    stats = {
        "client_attempted": sum(s.stats.client_attempted for s in swarms),
        "client_opened": sum(s.stats.client_opened for s in swarms),
        "client_closed": sum(s.stats.client_closed for s in swarms),
        "server_opened": sum(s.stats.server_opened for s in swarms),
        "server_closed": sum(s.stats.server_closed for s in swarms),
    }
    connection_events = stats["client_opened"] + stats["server_opened"]

    td = now_ms()
    await pool.stop(swarms)
    teardown_ms = now_ms() - td

    links_at_mark = sum(counts_at_mark) / 2
    first = swarms[0]

    limits = swarm_limits(first)

    return {
        "bench": "scale",
        "params": {
            "n": n,
            "join": args.join,
            "testnet_nodes": args.nodes,
            "timeout_ms": args.timeout,
            "settle_ms": args.settle,
            "stagger_ms": args.stagger,
            "backend": args.backend,
        },
        "defaults": {
            "maxPeers": limits["max_peers"],
            "maxParallel": limits["max_parallel"],
            "maxClientConnections": limits["max_client"],
            "maxServerConnections": limits["max_server"],
        },
        "full_mesh_ms": r1(watch.marks["full_mesh_ms"]),
        "timed_out": timed_out,
        "stop_reason": stop_reason,
        "stop_ms": r1(stop_ms),
        "last_change_ms": r1(last_change_at_stop),
        "cpu": {
            "ms_join_to_last_change": r1(cpu_ms_at_last_change_stop),
            "ms_join_to_stop": r1(cpu_ms_to_stop),
            "ms_per_link": None
            if cpu_ms_at_last_change_stop is None or not links_at_mark
            else round(cpu_ms_at_last_change_stop / links_at_mark, 3),
            "busy_fraction_to_last_change": None
            if cpu_ms_at_last_change_stop is None or not last_change_at_stop
            else round(cpu_ms_at_last_change_stop / last_change_at_stop, 2),
        },
        "gc": gc_watch.report(tracked_baseline, tracked_at_mark, links_at_mark)
        | ({} if census0 is None or census1 is None else {"added_by_type": diff(census0, census1)}),
        "t_first_all_ms": r1(watch.marks["t_first_all_ms"]),
        "t50_ms": r1(watch.marks["t50_ms"]),
        "t90_ms": r1(watch.marks["t90_ms"]),
        "t99_ms": r1(watch.marks["t99_ms"]),
        "flushed_all_ms": r1(flushed_all_ms),
        "refresh_start_ms": r1(refresh_start_ms),
        "bootstrap_all_ms": r1(bootstrap_all_ms),
        "connections": {
            "expected_per_swarm": n - 1,
            "links_at_mark": links_at_mark,
            "links_settled": sum(counts_settled) / 2,
            "expected_links": n * (n - 1) // 2,
            "min_per_swarm_settled": min(counts_settled),
            "max_per_swarm_settled": max(counts_settled),
            "connection_events": connection_events,
            **stats,
        },
        "rss_mib": {
            "gc_forced": True,
            "baseline_swarms_bootstrapped": rss_baseline,
            "at_mark": rss_at_mark,
            "peak_sampled": peak_rss[0],
            "settled": rss_settled,
            "mesh_delta": round(rss_settled - rss_baseline, 1),
        },
        "teardown_ms": r1(teardown_ms),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument(
        "--join", choices=("sequential", "refresh", "simultaneous"), default="sequential"
    )
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=60000, help="ms")
    parser.add_argument("--settle", type=float, default=3000, help="ms")
    parser.add_argument("--stagger", type=float, default=0, help="ms between joins")
    parser.add_argument("--stable-ms", type=float, default=10000)
    parser.add_argument(
        "--gc-census", action="store_true", help="add the tracked objects the mesh added, by type"
    )
    add_backend_argument(parser)
    args = parser.parse_args(argv)
    if args.n < 2 or args.nodes < 1:
        parser.error("--n must be >= 2 and --nodes >= 1")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    os.environ["P2PSWARM_BENCH_BACKEND"] = arguments.backend
    emit(anyio.run(main, arguments, backend=arguments.backend))
