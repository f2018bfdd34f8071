"""A partial mesh of swarms on a testnet: each swarm connects only to its graph neighbours."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio

from p2pswarm import KeyPair, Swarm
from p2pswarm.testing import create_testnet

from ..swarm.helpers import BACKOFFS

TIMEOUT = 30.0


def ring_with_chords(n: int, chord: int = 7) -> list[tuple[int, int]]:
    """A ring plus a chord from every node ``chord`` steps on: degree 4, small diameter."""
    edges = {tuple(sorted((i, (i + 1) % n))) for i in range(n)}
    edges |= {tuple(sorted((i, (i + chord) % n))) for i in range(n)}
    return sorted((a, b) for a, b in edges if a != b)


def diameter(n: int, edges: Sequence[tuple[int, int]]) -> int:
    adjacent: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b in edges:
        adjacent[a].add(b)
        adjacent[b].add(a)
    worst = 0
    for start in range(n):
        dist = {start: 0}
        todo = deque([start])
        while todo:
            node = todo.popleft()
            for other in adjacent[node]:
                if other not in dist:
                    dist[other] = dist[node] + 1
                    todo.append(other)
        assert len(dist) == n, "the graph is not connected"
        worst = max(worst, *dist.values())
    return worst


async def wait_for(predicate: Callable[[], bool], changed: Callable[[], anyio.Event]) -> None:
    with anyio.fail_after(TIMEOUT):
        while not predicate():
            await changed().wait()


@asynccontextmanager
async def partial_mesh(
    n: int,
    edges: Sequence[tuple[int, int]],
    *,
    setup: Callable[[int, Swarm], Any] | None = None,
    nodes: int = 5,
) -> AsyncIterator[list[Swarm]]:
    """``n`` swarms, each connected to its neighbours in ``edges`` and to nobody else (a
    firewall refuses the rest). ``setup(i, swarm)`` runs before any connection."""
    keys = [KeyPair.generate() for _ in range(n)]
    allowed: dict[bytes, set[bytes]] = {k.public_key: set() for k in keys}
    for a, b in edges:
        allowed[keys[a].public_key].add(keys[b].public_key)
        allowed[keys[b].public_key].add(keys[a].public_key)
    async with create_testnet(nodes) as testnet, AsyncExitStack() as stack:
        swarms: list[Swarm] = []
        for i, key_pair in enumerate(keys):
            mine = allowed[key_pair.public_key]

            def firewall(remote: bytes, address: object, mine: set[bytes] = mine) -> bool:
                return remote not in mine

            swarm = await stack.enter_async_context(
                Swarm(
                    key_pair=key_pair,
                    bootstrap=testnet.bootstrap,
                    firewall=firewall,
                    backoffs=BACKOFFS,
                    jitter=0,
                )
            )
            if setup is not None:
                setup(i, swarm)
            swarms.append(swarm)
        async with anyio.create_task_group() as tg:
            for swarm in swarms:
                tg.start_soon(swarm.listen)
        for a, b in edges:
            swarms[a].join_peer(keys[b].public_key)
        yield swarms
