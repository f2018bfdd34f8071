"""A DHTRPCNode on UDX sockets it shares with UDX streams (as HyperDHT shares libudx's):
the sockets' non-stream datagrams feed ``datagram_received``, the node sends through them,
and streams and dht-rpc traffic run side by side."""

from __future__ import annotations

import anyio
import pytest

from p2pswarm.hyperdht import DHTRPCNode
from p2pswarm.protocol.dht_rpc import node_id
from p2pswarm.transports.udx import open_udx_socket

from .helpers import python_network

pytestmark = pytest.mark.anyio


async def test_a_node_and_udx_streams_share_two_sockets() -> None:
    async with (
        python_network(2) as (boot, _),
        open_udx_socket() as server,
        open_udx_socket() as client,
        open_udx_socket() as other,
    ):
        node = DHTRPCNode(
            bootstrap=[boot.address],
            ephemeral=False,
            send=server.send_datagram,
            local_address=server.local_address,
            client_send=client.send_datagram,
            client_address=client.local_address,
        )
        server.on_message = node.datagram_received
        client.on_message = lambda data, address: node.datagram_received(data, address, client=True)
        async with node:
            with anyio.fail_after(20):
                await node.fully_bootstrapped()
            # The firewall test passed through the shared server socket.
            assert not node.ephemeral and node.id == node_id(*server.local_address)
            await boot.wait_until(lambda: server.local_address in boot.to_array())

            ours, theirs = server.create_stream(), other.create_stream()
            ours.connect(theirs.id, *other.local_address)
            theirs.connect(ours.id, *server.local_address)
            payload = bytes(range(256)) * 40
            with anyio.fail_after(20):
                await ours.send(payload)
                await ours.send_eof()
                received = b""
                while len(received) < len(payload):
                    received += await theirs.receive()
            assert received == payload

            # ...and the node still answers on the same socket, with its id.
            pong = await boot.ping(server.local_address)
            assert pong.from_.id == node.id
            await ours.aclose()
            await theirs.aclose()
