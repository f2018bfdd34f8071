"""``relayThrough`` across languages on a JS testnet (hyperdht 6.34, blind-relay 1.6.1):

a Python client reaches a JS server that names a relay (JS ``relayThrough``, here a
Python peer's key or a JS peer's), through a Python relay peer and through a JS relay
peer; the relay's counters show the pair.

The secret stream runs end to end; echoed bytes prove it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import anyio
import pytest

from p2pswarm.hyperdht import HyperDHT
from p2pswarm.hyperdht.relaying import relay_handler
from p2pswarm.keys import KeyPair
from p2pswarm.relay import BlindRelayServer

from ._hyperdht_js import SKIP_REASON, js_hyperdht
from .test_connect_js import python_node, roundtrip

pytestmark = [
    pytest.mark.interop,
    pytest.mark.anyio,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

SERVER_SEED = bytes(range(32))
SERVER = KeyPair.from_seed(SERVER_SEED)
RELAY_SEED = bytes(range(2, 34))
RELAY = KeyPair.from_seed(RELAY_SEED)
CLIENT_SEED = bytes(range(1, 33))
LIMIT = 45


@contextlib.asynccontextmanager
async def python_relay(bootstrap: list[tuple[str, int]]) -> AsyncIterator[BlindRelayServer]:
    async with python_node(bootstrap, ephemeral=True) as node:
        relay = BlindRelayServer()
        server = node.create_server(relay_handler(relay))
        await server.listen(RELAY)
        yield relay
        relay.close()
        await server.aclose()


async def connect_firewalled(dht: HyperDHT) -> bytes:
    """Connect as a peer behind a NAT would (not OPEN) and echo through the connection."""
    dht.firewalled = True
    async with await dht.connect(SERVER.public_key) as connection:
        data = os.urandom(50_000)
        assert await roundtrip(connection, data) == data
        return connection.remote_public_key


@pytest.mark.parametrize("relay_kind", ["python", "js"])
async def test_a_python_client_reaches_a_js_server_through_a_relay(relay_kind: str) -> None:
    with anyio.fail_after(LIMIT):
        async with js_hyperdht(testnet=4) as js, contextlib.AsyncExitStack() as stack:
            if relay_kind == "python":
                relay = await stack.enter_async_context(python_relay(js.bootstrap))
            else:
                await js.call("relay", seed=RELAY_SEED.hex())
            await js.call("listen", seed=SERVER_SEED.hex(), relayThrough=RELAY.public_key.hex())
            client = await stack.enter_async_context(python_node(js.bootstrap, ephemeral=True))
            assert await connect_firewalled(client) == SERVER.public_key
            if relay_kind == "python":
                assert relay.stats.matched == 1
            else:
                assert (await js.call("relayStats"))["matched"] == 1
