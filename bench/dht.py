"""DHT latency on a local testnet, and a large testnet's correctness, as one JSON line.

Per iteration, as the JS anchor's connect.js does it (fresh nodes, a fresh topic):

1. two fresh ephemeral DHT nodes A and B bootstrap from the testnet   -> bootstrap_ms
2. A announces a fresh topic, to completed (every store acknowledged) -> announce_ms
   (the anchor's A join(server) -> flushed, 3.49 ms median on this machine)
3. B looks the topic up until the query has finished                -> lookup_ms
   (the anchor's B flushed, 1.67 ms), and until A's record arrived  -> lookup_first_ms
4. both nodes close                                                  -> teardown_ms

Then, unless ``--scale-nodes 0``: a testnet of that many nodes in this one process, several
announcers on one topic, and lookups from many nodes; ``scale.all_found`` says whether
every lookup found every announcer.

Usage: python bench/dht.py [--iterations 50] [--warmup 3] [--nodes 10] [--scale-nodes 200]
                           [--backend asyncio|trio]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
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

from p2pswarm.dht import DHTNode, create_testnet
from p2pswarm.keys import KeyPair


async def iteration(bootstrap: list[tuple[str, int]], samples: dict[str, list[float]]) -> None:
    key_pair = KeyPair.generate()
    t0 = now_ms()
    async with (
        DHTNode(bootstrap=bootstrap, host=HOST) as a,
        DHTNode(bootstrap=bootstrap, host=HOST) as b,
    ):
        samples["bootstrap_ms"].append(now_ms() - t0)
        topic = os.urandom(32)
        t1 = now_ms()
        await a.announce(topic, key_pair, 4000)
        samples["announce_ms"].append(now_ms() - t1)
        t2 = now_ms()
        first: float | None = None
        async with b.lookup(topic) as found:
            async for record in found:
                if record.public_key == key_pair.public_key and first is None:
                    first = now_ms() - t2
        samples["lookup_ms"].append(now_ms() - t2)
        if first is None:
            raise RuntimeError("lookup did not find the announcer")
        samples["lookup_first_ms"].append(first)
        t3 = now_ms()
    samples["teardown_ms"].append(now_ms() - t3)


async def scale_check(size: int, announcers: int, lookups: int) -> dict[str, Any]:
    t0 = now_ms()
    async with create_testnet(size, host=HOST) as testnet:
        created = now_ms() - t0
        topic = os.urandom(32)
        keys = [KeyPair.generate() for _ in range(announcers)]
        announce_times = []
        for index, key_pair in enumerate(keys):
            node = testnet.nodes[index * size // announcers]
            t1 = now_ms()
            await node.announce(topic, key_pair, 5000 + index)
            announce_times.append(now_ms() - t1)
        expected = {kp.public_key for kp in keys}
        found_all = 0
        lookup_times = []
        for node in random.Random(1).sample(testnet.nodes, min(lookups, size)):
            t2 = now_ms()
            async with node.lookup(topic) as found:
                seen = {record.public_key async for record in found}
            lookup_times.append(now_ms() - t2)
            found_all += seen == expected
        return {
            "nodes": size,
            "announcers": announcers,
            "lookups": len(lookup_times),
            "lookups_finding_all": found_all,
            "all_found": found_all == len(lookup_times),
            "testnet_create_ms": round(created, 1),
            "announce_ms": summary(announce_times),
            "lookup_ms": summary(lookup_times),
            "rss_mib": rss_mib(),
        }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tx0 = ext_tx_packets()
    start = now_ms()
    samples: dict[str, list[float]] = {
        key: []
        for key in ("bootstrap_ms", "announce_ms", "lookup_ms", "lookup_first_ms", "teardown_ms")
    }
    t0 = now_ms()
    async with create_testnet(args.nodes, host=HOST) as testnet:
        testnet_ms = now_ms() - t0
        for _ in range(args.warmup):
            await iteration(testnet.bootstrap, {key: [] for key in samples})
        for _ in range(args.iterations):
            await iteration(testnet.bootstrap, samples)
    result: dict[str, Any] = {
        "bench": "dht",
        "params": {
            "iterations": args.iterations,
            "warmup": args.warmup,
            "testnet_nodes": args.nodes,
            "scale_nodes": args.scale_nodes,
        },
        "testnet_create_ms": round(testnet_ms, 1),
    }
    result.update({key: summary(values) for key, values in samples.items()})
    if args.scale_nodes:
        result["scale"] = await scale_check(args.scale_nodes, args.announcers, args.lookups)
    tx1 = ext_tx_packets()
    result["errors"] = 0
    result["total_ms"] = round(now_ms() - start)
    result["ext_tx_packets_delta"] = None if tx0 is None or tx1 is None else tx1 - tx0
    result["versions"] = versions()
    result["samples"] = {key: [round(v, 3) for v in values] for key, values in samples.items()}
    return result


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=10, help="testnet size for the latencies")
    parser.add_argument("--scale-nodes", type=int, default=200, help="0 skips the scale check")
    parser.add_argument("--announcers", type=int, default=20)
    parser.add_argument("--lookups", type=int, default=50)
    add_backend_argument(parser)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args(sys.argv[1:])
    os.environ["P2PSWARM_BENCH_BACKEND"] = arguments.backend
    emit(anyio.run(main, arguments, backend=arguments.backend))
