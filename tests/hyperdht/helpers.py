"""Shared helpers for the dht-rpc node tests: small Python networks, a raw UDP peer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import anyio.abc

from p2pswarm.hyperdht import DHTRPCNode
from p2pswarm.protocol.compact import IPv4Address
from p2pswarm.protocol.dht_rpc import Request, Response, decode

Address = tuple[str, int]


@asynccontextmanager
async def python_network(
    n: int, **options: Any
) -> AsyncIterator[tuple[DHTRPCNode, list[DHTRPCNode]]]:
    """A bootstrapper on 127.0.0.1 and ``n`` persistent nodes joined through it."""
    async with AsyncExitStack() as stack:
        boot = await stack.enter_async_context(_bootstrapper(**options))
        nodes = []
        for _ in range(n):
            node = DHTRPCNode(
                bootstrap=[boot.address], host="127.0.0.1", ephemeral=False, **options
            )
            await stack.enter_async_context(node)
            with anyio.fail_after(20):
                await node.fully_bootstrapped()
            nodes.append(node)
        yield boot, nodes


@asynccontextmanager
async def _bootstrapper(**options: Any) -> AsyncIterator[DHTRPCNode]:
    # Bind a free port first: a bootstrapper's id is H(its address), so it needs its port.
    for _ in range(20):
        probe = await anyio.create_udp_socket(local_host="127.0.0.1")
        port = probe.extra(anyio.abc.SocketAttribute.local_port)
        await probe.aclose()
        node = DHTRPCNode.bootstrapper(port, "127.0.0.1", **options)
        try:
            await node.__aenter__()
        except OSError:
            continue
        try:
            yield node
        finally:
            await node.__aexit__(None, None, None)
        return
    raise RuntimeError("no free port for a bootstrapper")


class RawPeer:
    """A bare UDP socket that sends hand-made dht-rpc datagrams and reads what comes back."""

    def __init__(self, sock: anyio.abc.UDPSocket) -> None:
        self.sock = sock

    @property
    def address(self) -> Address:
        local = self.sock.extra(anyio.abc.SocketAttribute.local_address)
        return str(local[0]), int(local[1])

    async def send(self, data: bytes, to: Address) -> None:
        await self.sock.sendto(data, *to)

    async def receive(self, within: float = 5.0) -> tuple[Request | Response, Address]:
        with anyio.fail_after(within):
            data, source = await self.sock.receive()
        return decode(data), (str(source[0]), int(source[1]))

    async def request(self, to: Address, request: Request) -> Response:
        """Send ``request``; the reply with its tid (other datagrams are skipped)."""
        await self.send(request.encode(), to)
        with anyio.fail_after(5):
            while True:
                message, _ = await self.receive()
                if isinstance(message, Response) and message.tid == request.tid:
                    return message

    def to(self, node: DHTRPCNode) -> IPv4Address:
        return IPv4Address(*node.address)


@asynccontextmanager
async def raw_peer() -> AsyncIterator[RawPeer]:
    sock = await anyio.create_udp_socket(local_host="127.0.0.1")
    async with sock:
        yield RawPeer(sock)
