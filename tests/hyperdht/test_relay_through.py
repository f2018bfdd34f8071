"""``relay_through`` on a Python testnet: a third peer runs a blind relay as a HyperDHT
server; a client or a server naming it makes both sides pair their connection's UDX
stream there, and the secret stream runs end to end through the relay, which only forwards
ciphertext. A relay that is unreachable fails the connect with a typed error."""

from __future__ import annotations

import os

import anyio
import pytest

from p2pswarm.errors import RelayPairingError
from p2pswarm.hyperdht import create_testnet
from p2pswarm.hyperdht.relaying import relay_handler
from p2pswarm.keys import KeyPair
from p2pswarm.relay import BlindRelayServer

from .test_connect import echo, roundtrip

pytestmark = pytest.mark.anyio

SERVER = KeyPair.from_seed(b"s" * 32)
RELAY = KeyPair.from_seed(b"r" * 32)
LIMIT = 30


@pytest.mark.parametrize("side", ["client", "server"])
async def test_a_connection_runs_through_a_python_relay_peer(side: str) -> None:
    with anyio.fail_after(LIMIT):
        async with create_testnet(4) as testnet:
            relay_node = await testnet.create_node()
            relay = BlindRelayServer()
            relay_server = relay_node.create_server(relay_handler(relay))
            await relay_server.listen(RELAY)
            server_node = await testnet.create_node()
            server = server_node.create_server(
                echo, relay_through=RELAY.public_key if side == "server" else None
            )
            await server.listen(SERVER)
            client = await testnet.create_node()
            # On loopback the firewall test finds every node reachable; both ends behave as
            # behind NATs from now on (no OPEN side: the connection needs the relay).
            client.firewalled = server_node.firewalled = True
            connection = await client.connect(
                SERVER.public_key,
                relay_through=(lambda: RELAY.public_key) if side == "client" else None,
            )
            async with connection:
                assert connection.remote_public_key == SERVER.public_key
                data = os.urandom(100_000)
                assert await roundtrip(connection, data) == data
                assert relay.stats.matched == 1
                assert relay.links == 2
                assert server.stats["relayed"] == 1
            await relay.wait_until(lambda r: r.links == 0)
            await server.aclose()
            await relay_server.aclose()


async def test_an_unreachable_relay_fails_the_connect_with_a_typed_error() -> None:
    with anyio.fail_after(LIMIT):
        async with create_testnet(3) as testnet:
            server_node = await testnet.create_node()
            server = server_node.create_server(echo)
            await server.listen(SERVER)
            client = await testnet.create_node()
            client.firewalled = server_node.firewalled = True
            with pytest.raises(RelayPairingError, match="cannot reach the relay"):
                await client.connect(SERVER.public_key, relay_through=os.urandom(32))
            await server.aclose()
