"""A HyperDHT network of Python nodes on one host, for tests and benchmarks.

``async with create_testnet(10) as testnet:`` starts ``size`` nodes on 127.0.0.1 and waits
until each has joined; ``testnet.bootstrap`` is the address list to hand to other nodes
(Python or JS), ``await testnet.create_node()`` adds an ephemeral client. Every node is shut
down on the way out.

One difference from ``hyperdht/testnet.js``, on purpose: JS's first node never becomes
persistent (it has nobody to confirm its address), so it routes but stores nothing. Ours is
a bootstrapper (persistent from the start at its own address, like JS's
``DHT.bootstrapper``), so every node of a Python testnet stores and answers. Ports are
picked by the kernel, never HyperDHT's default 49737, so testnets never collide.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Final

from .dht import HyperDHT
from .rpc import Address

__all__ = ("Testnet", "create_testnet")

#: Attempts at binding the first node to a port that was free a moment before.
_BIND_ATTEMPTS: Final = 5


class Testnet:
    """Running nodes: ``nodes`` (the first is the bootstrap node) and ``bootstrap``."""

    def __init__(self, stack: contextlib.AsyncExitStack, host: str) -> None:
        self._stack = stack
        self._host = host
        self.nodes: list[HyperDHT] = []
        self.bootstrap: list[Address] = []

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    async def add_node(self, *, ephemeral: bool | None = False, **options: object) -> HyperDHT:
        """One more node joining through ``bootstrap``; persistent unless told otherwise."""
        persistent = ephemeral is False
        node = HyperDHT(
            self.bootstrap,
            host=self._host,
            ephemeral=ephemeral,
            firewalled=not persistent,
            **options,  # type: ignore[arg-type]
        )
        await self._stack.enter_async_context(node)
        await node.fully_bootstrapped()
        self.nodes.append(node)
        return node

    async def create_node(self, **options: object) -> HyperDHT:
        """An ephemeral node on the testnet: a client that stores nothing for others."""
        return await self.add_node(ephemeral=True, **options)


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


async def _start_bootstrapper(stack: contextlib.AsyncExitStack, host: str) -> HyperDHT:
    failure: OSError | None = None
    for _ in range(_BIND_ATTEMPTS):
        node = HyperDHT.bootstrapper(_free_udp_port(host), host)
        assert isinstance(node, HyperDHT)
        try:
            await stack.enter_async_context(node)
        except OSError as exc:  # someone took the port in between: try another
            failure = exc
            continue
        return node
    assert failure is not None
    raise failure


@contextlib.asynccontextmanager
async def create_testnet(
    size: int = 10, *, host: str = "127.0.0.1", bootstrap: Sequence[Address] = ()
) -> AsyncIterator[Testnet]:
    """``size`` persistent nodes on ``host``; with ``bootstrap``, they join that network
    instead of starting their own."""
    async with contextlib.AsyncExitStack() as stack:
        testnet = Testnet(stack, host)
        testnet.bootstrap = list(bootstrap)
        if size > 0 and not bootstrap:
            first = await _start_bootstrapper(stack, host)
            testnet.nodes.append(first)
            testnet.bootstrap = [(host, first.address[1])]
        while len(testnet.nodes) < size:
            await testnet.add_node()
        yield testnet
