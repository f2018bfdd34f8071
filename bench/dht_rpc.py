"""dht-rpc on a 10-node JS network: our node against JS's, in one run, as JSON lines.

The network is real JS dht-rpc (a bootstrapper and 9 persistent nodes, in one node
process, on 127.0.0.1). Against it, alternately, a fresh ephemeral Python DHTRPCNode (in
this process) and a fresh ephemeral JS dht-rpc node (in a second node process, so both
clients pay the same cross-process round trips):

- ``bootstrap_ms``: create, bind and finish the join walk;
- ``find_node_ms``: one FIND_NODE walk to a random target;
- ``qps``: find-node walks per second from one node, ``--parallel`` at a time;
- ``rss_per_node_kib``: resident memory per extra joined node (50 of them, after a GC).

Usage: python bench/dht_rpc.py [--iterations 30] [--queries 300] [--parallel 10]
                               [--backend asyncio|trio]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

import anyio
from _common import (
    HOST,
    add_backend_argument,
    emit,
    ext_tx_packets,
    now_ms,
    rss_mib,
    summary,
    versions,
)
from anyio.streams.buffered import BufferedByteReceiveStream

from p2pswarm.hyperdht import DHTRPCNode

INTEROP = Path(__file__).resolve().parent.parent / "tests" / "interop"
NET_JS = INTEROP / "dht_rpc_net.js"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Js:
    def __init__(self, process: Any) -> None:
        self.process = process
        self.lines = BufferedByteReceiveStream(process.stdout)

    async def call(self, **message: Any) -> dict[str, Any]:
        await self.process.stdin.send((json.dumps(message) + "\n").encode())
        with anyio.fail_after(120):
            reply: dict[str, Any] = json.loads(await self.lines.receive_until(b"\n", 1 << 20))
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply


async def python_join(bootstrap: list[tuple[str, int]]) -> tuple[float, float]:
    t0 = now_ms()
    async with DHTRPCNode(bootstrap=bootstrap, host=HOST) as node:
        await node.fully_bootstrapped()
        t1 = now_ms()
        await node.find_node(os.urandom(32)).finished()
        t2 = now_ms()
    return t1 - t0, t2 - t1


async def python_qps(bootstrap: list[tuple[str, int]], queries: int, parallel: int) -> float:
    async with DHTRPCNode(bootstrap=bootstrap, host=HOST) as node:
        await node.fully_bootstrapped()
        left = queries

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await node.find_node(os.urandom(32)).finished()

        t0 = now_ms()
        async with anyio.create_task_group() as tg:
            for _ in range(parallel):
                tg.start_soon(worker)
        return queries / ((now_ms() - t0) / 1000)


async def python_memory(bootstrap: list[tuple[str, int]], n: int) -> float:
    before = rss_mib(collect=True)
    nodes = [DHTRPCNode(bootstrap=bootstrap, host=HOST) for _ in range(n)]
    for node in nodes:
        await node.__aenter__()
        await node.fully_bootstrapped()
    after = rss_mib(collect=True)
    for node in reversed(nodes):
        await node.__aexit__(None, None, None)
    return (after - before) * 1024 / n


async def main(args: argparse.Namespace) -> None:
    node = shutil.which("node")
    if node is None or not (INTEROP / "node_modules" / "dht-rpc").is_dir():
        sys.exit("needs node and `npm ci` in tests/interop")
    tx_before = ext_tx_packets()
    process = await anyio.open_process(
        [node, "--expose-gc", str(NET_JS), "--timeout-ms=1800000"], cwd=INTEROP
    )
    client_process = await anyio.open_process(
        [node, "--expose-gc", str(NET_JS), "--timeout-ms=1800000"], cwd=INTEROP
    )
    async with process, client_process:
        js = Js(process)
        js_client = Js(client_process)
        boot = await js.call(op="start", bootstrapper=True, port=free_port())
        bootstrap = [(HOST, boot["port"])]
        for _ in range(9):
            await js.call(
                op="start",
                bootstrap=[list(a) for a in bootstrap],
                port=free_port(),
                ephemeral=False,
            )
        samples: dict[str, dict[str, list[float]]] = {
            "python": {"bootstrap_ms": [], "find_node_ms": []},
            "js": {"bootstrap_ms": [], "find_node_ms": []},
        }
        for _ in range(args.iterations):
            b, f = await python_join(bootstrap)
            samples["python"]["bootstrap_ms"].append(b)
            samples["python"]["find_node_ms"].append(f)
            out = await js_client.call(op="benchJoin", bootstrap=[list(a) for a in bootstrap])
            samples["js"]["bootstrap_ms"].append(out["bootstrap_ms"])
            samples["js"]["find_node_ms"].append(out["find_node_ms"])
        qps_py = await python_qps(bootstrap, args.queries, args.parallel)
        out = await js_client.call(
            op="benchQps",
            bootstrap=[list(a) for a in bootstrap],
            queries=args.queries,
            parallel=args.parallel,
        )
        qps_js = args.queries / out["seconds"]
        mem_py = await python_memory(bootstrap, 50)
        mem_js = (
            await js_client.call(op="benchMem", bootstrap=[list(a) for a in bootstrap], n=50)
        )["rss_per_node_kib"]
        for p, j in ((client_process, js_client), (process, js)):
            await j.call(op="destroy")
            await p.stdin.aclose()
            await p.wait()
    tx_after = ext_tx_packets()
    for impl, values in samples.items():
        emit(
            {
                "bench": "dht_rpc",
                "impl": impl,
                "network": "10 JS dht-rpc nodes on 127.0.0.1",
                "bootstrap_ms": summary(values["bootstrap_ms"]),
                "find_node_ms": summary(values["find_node_ms"]),
                "qps": round(qps_py if impl == "python" else qps_js, 1),
                "parallel": args.parallel,
                "rss_per_node_kib": round(mem_py if impl == "python" else mem_js, 1),
                "ext_tx_packets": None
                if tx_before is None or tx_after is None
                else tx_after - tx_before,
                "versions": versions() if impl == "python" else {"dht-rpc": "6.27.0"},
            }
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--parallel", type=int, default=10)
    add_backend_argument(parser)
    arguments = parser.parse_args()
    os.environ["P2PSWARM_BENCH_BACKEND"] = arguments.backend
    anyio.run(main, arguments, backend=arguments.backend)
