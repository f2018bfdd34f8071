"""A throwaway local DHT on 127.0.0.1, for tests, benchmarks and examples.

Hyperdht's ``createTestnet`` in Python: the first node starts with no bootstrap and its
address becomes ``testnet.bootstrap``; every other node bootstraps from it. All of them
are persistent, so they route and store. Each node runs in its own task of the testnet's
task group, so nodes can be added and removed (churn) while the testnet runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.abc

from .node import DHTNode

__all__ = ("Testnet", "create_testnet")


class Testnet:
    """A running local DHT. ``bootstrap`` is the list to pass to other nodes and swarms."""

    def __init__(self, tg: anyio.abc.TaskGroup, host: str, options: dict[str, Any]) -> None:
        self._tg = tg
        self._host = host
        self._options = options
        self.nodes: list[DHTNode] = []
        self.bootstrap: list[tuple[str, int]] = []

    def __iter__(self) -> Iterator[DHTNode]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    async def add_node(self, **options: Any) -> DHTNode:
        """Start one more persistent node (bootstrapped from ``bootstrap``) and return it."""
        settings: dict[str, Any] = {
            "host": self._host,
            "bootstrap": self.bootstrap,
            "ephemeral": False,
            **self._options,
            **options,
        }
        node = DHTNode(**settings)

        async def serve(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            async with node:
                task_status.started()
                await node.wait_closed()

        await self._tg.start(serve)
        self.nodes.append(node)
        return node

    async def remove_node(self, node: DHTNode) -> None:
        """Stop ``node`` (as if it crashed: it sends nothing on the way out)."""
        if node in self.nodes:
            self.nodes.remove(node)
        await node.aclose()

    async def aclose(self) -> None:
        """Stop every node, newest first."""
        while self.nodes:
            await self.nodes.pop().aclose()


@contextlib.asynccontextmanager
async def create_testnet(
    size: int = 10, *, host: str = "127.0.0.1", **node_options: Any
) -> AsyncIterator[Testnet]:
    """``async with create_testnet(10) as testnet:`` a DHT of ``size`` nodes on ``host``.

    ``node_options`` go to every :class:`DHTNode` (``clock``, ``request_timeout``, ...).
    """
    if size < 1:
        raise ValueError("a testnet needs at least one node")
    async with anyio.create_task_group() as tg:
        testnet = Testnet(tg, host, node_options)
        try:
            first = await testnet.add_node(bootstrap=[])
            testnet.bootstrap = [first.address]
            for _ in range(size - 1):
                await testnet.add_node()
            yield testnet
        finally:
            with anyio.CancelScope(shield=True):
                await testnet.aclose()
