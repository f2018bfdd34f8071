"""Gossip latency to 30 swarms: broadcast to the last of 29 receivers across a partial mesh.

30 swarms on a local testnet (127.0.0.1), each connected only to its neighbours in a ring
with chords (degree 4; nobody is connected to all), all in this one process and event
loop. Each round one swarm (in turn) broadcasts; the latency of a message is the time
until the last of the other 29 delivered it; ``first_ms`` until the first did. Prints one
JSON line: ``{"bench": "gossip", "swarms", "degree", "messages", "latency_ms": {...},
"first_ms": {...}, "copies_per_delivery", ...}``.

There is no JS counterpart in one run: Hyperswarm has no gossip layer of its own.

Usage: ``python bench/gossip.py [--swarms 30] [--messages 50] [--size 64] [--backend trio]``.
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import AsyncExitStack
from typing import Any

import anyio
from _common import add_backend_argument, emit, summary, versions

from p2pswarm import KeyPair, Swarm
from p2pswarm.gossip import Gossip, GossipMessage
from p2pswarm.keys import topic
from p2pswarm.testing import create_testnet

ROOM = topic("bench gossip")


def ring_with_chords(n: int, chord: int = 7) -> list[tuple[int, int]]:
    edges = {tuple(sorted((i, (i + 1) % n))) for i in range(n)}
    edges |= {tuple(sorted((i, (i + chord) % n))) for i in range(n)}
    return sorted((a, b) for a, b in edges if a != b)


async def run(n: int, messages: int, size: int) -> dict[str, Any]:
    edges = ring_with_chords(n)
    keys = [KeyPair.generate() for _ in range(n)]
    allowed: dict[bytes, set[bytes]] = {k.public_key: set() for k in keys}
    for a, b in edges:
        allowed[keys[a].public_key].add(keys[b].public_key)
        allowed[keys[b].public_key].add(keys[a].public_key)
    arrivals: dict[bytes, list[float]] = {}
    changed = anyio.Event()

    def on_message(message: GossipMessage) -> None:
        nonlocal changed
        arrivals.setdefault(message.id, []).append(time.perf_counter())
        changed.set()
        changed = anyio.Event()

    async with create_testnet(5) as testnet, AsyncExitStack() as stack:
        swarms: list[Swarm] = []
        gossips: list[Gossip] = []
        for key_pair in keys:
            mine = allowed[key_pair.public_key]
            swarm = await stack.enter_async_context(
                Swarm(
                    key_pair=key_pair,
                    bootstrap=testnet.bootstrap,
                    firewall=lambda remote, _addr, mine=mine: remote not in mine,
                    backoffs=(0.01, 0.02, 0.03, 0.04),
                    jitter=0,
                )
            )
            gossip = Gossip(swarm, ROOM)
            gossip.on_message(on_message)
            swarms.append(swarm)
            gossips.append(gossip)
        async with anyio.create_task_group() as tg:
            for swarm in swarms:
                tg.start_soon(swarm.listen)
        for a, b in edges:
            swarms[a].join_peer(keys[b].public_key)
        degree = [len(allowed[k.public_key]) for k in keys]
        with anyio.fail_after(60):
            for gossip, d in zip(gossips, degree, strict=True):
                await gossip.wait_neighbours(d)
        latencies, firsts = [], []
        payload = os.urandom(size)
        for i in range(messages):
            start = time.perf_counter()
            mid = await gossips[i % n].broadcast(payload)
            with anyio.fail_after(30):
                while len(arrivals.get(mid, [])) < n - 1:
                    await changed.wait()
            latencies.append((max(arrivals[mid]) - start) * 1000)
            firsts.append((min(arrivals[mid]) - start) * 1000)
        delivered = sum(g.stats.delivered for g in gossips)
        copies = delivered + sum(g.stats.duplicates for g in gossips)
        return {
            "bench": "gossip",
            "impl": "p2pswarm",
            "swarms": n,
            "degree": max(degree),
            "max_connections": max(len(s.connections) for s in swarms),
            "messages": messages,
            "size": size,
            "latency_ms": summary(latencies),
            "first_ms": summary(firsts),
            "copies_per_delivery": round(copies / delivered, 2),
            "dropped": sum(g.stats.dropped for g in gossips),
            "versions": versions(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--swarms", type=int, default=30)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--size", type=int, default=64)
    add_backend_argument(parser)
    args = parser.parse_args()
    os.environ["P2PSWARM_BENCH_BACKEND"] = args.backend
    emit(anyio.run(run, args.swarms, args.messages, args.size, backend=args.backend))


if __name__ == "__main__":
    main()
