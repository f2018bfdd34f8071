"""The firewall test decides persistence: a node whose server socket strangers cannot reach
stays ephemeral; the same node with an open server socket becomes persistent.

The node runs on two sockets this test owns (``send=``/``client_send=``, fed through
``datagram_received``), so the test can put a stateful firewall in front of the server
socket: it lets in only datagrams from addresses that socket has sent to (what an
address-and-port-restricted NAT does)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

from p2pswarm.hyperdht import DHTRPCNode

from .helpers import python_network

pytestmark = pytest.mark.anyio

Address = tuple[str, int]


def _local(sock: anyio.abc.UDPSocket) -> Address:
    local = sock.extra(anyio.abc.SocketAttribute.local_address)
    return str(local[0]), int(local[1])


@asynccontextmanager
async def node_behind(firewall: bool, bootstrap: Address) -> AsyncIterator[DHTRPCNode]:
    server = await anyio.create_udp_socket(local_host="127.0.0.1")
    client = await anyio.create_udp_socket(local_host="127.0.0.1")
    opened: set[Address] = set()
    outbox: list[tuple[anyio.abc.UDPSocket, bytes, Address]] = []
    wake = anyio.Event()

    def send_from(sock: anyio.abc.UDPSocket) -> object:
        def send(data: bytes, to: Address) -> None:
            nonlocal wake
            if sock is server:
                opened.add(to)
            outbox.append((sock, data, to))
            wake.set()

        return send

    node = DHTRPCNode(
        bootstrap=[bootstrap],
        ephemeral=False,
        send=send_from(server),  # type: ignore[arg-type]
        local_address=_local(server),
        client_send=send_from(client),  # type: ignore[arg-type]
        client_address=_local(client),
    )

    async def pump_out() -> None:
        nonlocal wake
        while True:
            await wake.wait()
            wake = anyio.Event()
            while outbox:
                sock, data, to = outbox.pop(0)
                await sock.sendto(data, *to)

    async def pump_in(sock: anyio.abc.UDPSocket, is_client: bool) -> None:
        async for data, (host, port) in sock:
            source = (str(host), int(port))
            if firewall and not is_client and source not in opened:
                continue  # dropped at the firewall
            node.datagram_received(data, source, client=is_client)

    async with server, client, anyio.create_task_group() as tg:
        tg.start_soon(pump_out)
        tg.start_soon(pump_in, server, False)
        tg.start_soon(pump_in, client, True)
        async with node:
            yield node
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("firewall", [True, False])
async def test_persistence_follows_reachability(firewall: bool) -> None:
    async with python_network(2) as (boot, _), node_behind(firewall, boot.address) as node:
        with anyio.fail_after(20):
            await node.fully_bootstrapped()
        if firewall:
            assert node.firewalled and node.ephemeral and node.id is None
            # Its walk still worked (from the client socket), it just is not routable.
            assert len(node.table) == 3
            assert all(node.client_address != a for a in boot.to_array())
        else:
            assert not node.firewalled and not node.ephemeral
            assert node.public_address == node.address
            await boot.wait_until(lambda: node.address in boot.to_array())
