"""HyperDHT on a 10-node testnet: Python nodes against JS nodes, one JSON line per run.

Both runs have the same shape, in one process each: ``--nodes`` nodes bootstrapped from the
first one, every socket on 127.0.0.1, and one ephemeral client node that times:

- ``announce_ms``: announce a fresh topic until every commit was answered;
- ``lookup_ms``: look that topic up until the walk ended (the record must be found);
- ``lookups_per_s``: ``--rate-count`` lookups of one topic, ``--rate-concurrency`` in flight;
- ``rss_per_node_mib``: the process's RSS growth from before the first node to the whole
  network being up, divided over the nodes (client included).

``--impl python`` runs our nodes here; ``--impl js`` runs ``bench/js_hyperdht_bench.js``
(real JS HyperDHT, from ``tests/interop/node_modules``); ``--impl mixed`` is our client on a
JS testnet; ``--impl all`` (the default) runs python, js, mixed in turn. One difference of
shape remains: JS's first testnet node never becomes persistent (9 of 10 store), ours does
(10 of 10); ``storing_nodes`` says so in each line.

Usage: python bench/hyperdht.py [--impl all|python|js|mixed] [--nodes 10] [--iterations 30]
                                [--warmup 3] [--rate-count 200] [--rate-concurrency 10]
                                [--backend asyncio|trio]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
    versions as python_versions,
)
from anyio.streams.buffered import BufferedByteReceiveStream

from p2pswarm.hyperdht import HyperDHT, create_testnet
from p2pswarm.keys import KeyPair

HERE = Path(__file__).resolve().parent
JS_BENCH = HERE / "js_hyperdht_bench.js"
JS_NODE = HERE.parent / "tests" / "interop" / "hyperdht_node.js"


async def count_found(client: HyperDHT, topic: bytes) -> int:
    return sum([len(reply.peers) async for reply in client.lookup(topic)])


async def measure(client: HyperDHT, args: argparse.Namespace) -> dict[str, Any]:
    """The timings of one client on a running network."""
    key_pair = KeyPair.generate()
    announce: list[float] = []
    lookup: list[float] = []
    for i in range(args.warmup + args.iterations):
        topic = os.urandom(32)
        t0 = now_ms()
        await client.announce(topic, key_pair)
        t1 = now_ms()
        found = await count_found(client, topic)
        t2 = now_ms()
        if found == 0:
            raise RuntimeError("lookup found nothing")
        if i >= args.warmup:
            announce.append(t1 - t0)
            lookup.append(t2 - t1)

    topic = os.urandom(32)
    await client.announce(topic, key_pair)
    remaining = args.rate_count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await count_found(client, topic)

    start = now_ms()
    async with anyio.create_task_group() as tg:
        for _ in range(args.rate_concurrency):
            tg.start_soon(worker)
    elapsed = now_ms() - start
    return {
        "announce_ms": summary(announce),
        "lookup_ms": summary(lookup),
        "lookups_per_s": round(args.rate_count / elapsed * 1000, 1),
        "rate": {
            "count": args.rate_count,
            "concurrency": args.rate_concurrency,
            "elapsed_ms": round(elapsed),
        },
    }


async def run_python(args: argparse.Namespace) -> dict[str, Any]:
    rss0 = rss_mib(collect=True)
    async with create_testnet(args.nodes, host=HOST) as testnet:
        client = await testnet.create_node()
        rss1 = rss_mib(collect=True)
        storing = sum(1 for node in testnet.nodes if node.id is not None)
        result = await measure(client, args)
        rss2 = rss_mib()
    return {
        "impl": "python",
        "nodes": args.nodes,
        "storing_nodes": storing,
        **result,
        "rss_mib": {"before": rss0, "network_up": rss1, "after": rss2},
        "rss_per_node_mib": round((rss1 - rss0) / (args.nodes + 1), 2),
    }


async def run_mixed(args: argparse.Namespace) -> dict[str, Any]:
    """Our client alone here; the testnet is real JS in a node process."""
    node = shutil.which("node")
    assert node is not None
    command = [node, str(JS_NODE), f"--testnet={args.nodes}", "--timeout-ms=600000"]
    async with await anyio.open_process(command, stderr=None) as process:
        assert process.stdout is not None and process.stdin is not None
        lines = BufferedByteReceiveStream(process.stdout)
        ready = json.loads(await lines.receive_until(b"\n", 1 << 20))
        bootstrap = [(a["host"], a["port"]) for a in ready["bootstrap"]]
        storing = sum(1 for n in ready["nodes"] if n["id"] is not None)
        async with HyperDHT(bootstrap, host=HOST, ephemeral=True) as client:
            await client.fully_bootstrapped()
            result = await measure(client, args)
        await process.stdin.send(b'{"op":"stop"}\n')
        await process.wait()
    return {"impl": "mixed", "nodes": args.nodes, "storing_nodes": storing, **result}


async def run_js(args: argparse.Namespace) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None
    command = [
        node,
        "--expose-gc",
        str(JS_BENCH),
        f"--nodes={args.nodes}",
        f"--iterations={args.iterations}",
        f"--warmup={args.warmup}",
        f"--rate-count={args.rate_count}",
        f"--rate-concurrency={args.rate_concurrency}",
    ]
    done = await anyio.run_process(command, stderr=None)
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    result.pop("bench", None)
    return result


RUNNERS = {"python": run_python, "js": run_js, "mixed": run_mixed}


async def main(args: argparse.Namespace) -> None:
    impls = ["python", "js", "mixed"] if args.impl == "all" else [args.impl]
    for impl in impls:
        tx0 = ext_tx_packets()
        result = await RUNNERS[impl](args)
        tx1 = ext_tx_packets()
        emit(
            {
                "bench": "hyperdht",
                **result,
                "ext_tx_packets": None if tx0 is None or tx1 is None else tx1 - tx0,
                "versions": {**python_versions(), **result.get("versions", {})},
            }
        )


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=("all", "python", "js", "mixed"), default="all")
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rate-count", type=int, default=200)
    parser.add_argument("--rate-concurrency", type=int, default=10)
    add_backend_argument(parser)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    os.environ["P2PSWARM_BENCH_BACKEND"] = arguments.backend
    anyio.run(main, arguments, backend=arguments.backend)
