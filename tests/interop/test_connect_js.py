"""Connect by key across languages: Python and JS HyperDHT clients and servers on one
network, the handshake relayed by JS or Python nodes, bytes echoed both ways.

JS runs in ``hyperdht_node.js`` subprocesses on 127.0.0.1 (kernel-picked ports); a JS
server echoes every message, the Python one too.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
import pytest

from p2pswarm.connection import Connection
from p2pswarm.hyperdht import HyperDHT, create_testnet
from p2pswarm.keys import KeyPair

from ._hyperdht_js import SKIP_REASON, js_hyperdht

pytestmark = [
    pytest.mark.interop,
    pytest.mark.anyio,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

SERVER_SEED = bytes(range(32))
SERVER = KeyPair.from_seed(SERVER_SEED)
CLIENT_SEED = bytes(range(1, 33))
CLIENT = KeyPair.from_seed(CLIENT_SEED)


@contextlib.asynccontextmanager
async def python_node(
    bootstrap: list[tuple[str, int]], **options: object
) -> AsyncIterator[HyperDHT]:
    async with HyperDHT(bootstrap, host="127.0.0.1", **options) as dht:  # type: ignore[arg-type]
        await dht.fully_bootstrapped()
        yield dht


async def echo(connection: Connection) -> None:
    with contextlib.suppress(
        anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError
    ):
        while True:
            await connection.send(await connection.receive())


async def roundtrip(connection: Connection, message: bytes) -> bytes:
    await connection.send(message)
    got = b""
    while len(got) < len(message):
        got += await connection.receive()
    return got


async def test_python_client_connects_to_a_js_server_on_a_js_testnet() -> None:
    async with js_hyperdht(testnet=4) as js, python_node(js.bootstrap, ephemeral=True) as dht:
        await js.call("listen", seed=SERVER_SEED.hex())
        async with await dht.connect(SERVER.public_key, key_pair=CLIENT) as connection:
            assert connection.remote_public_key == SERVER.public_key
            assert await roundtrip(connection, b"python -> js") == b"python -> js"
            big = bytes(range(256)) * 1500
            assert await roundtrip(connection, big) == big


async def test_js_client_connects_to_a_python_server_on_a_js_testnet() -> None:
    async with js_hyperdht(testnet=4) as js, python_node(js.bootstrap) as dht:
        server = dht.create_server(echo)
        await server.listen(SERVER)
        answer = await js.call(
            "connect", publicKey=SERVER.public_key.hex(), seed=CLIENT_SEED.hex(), message="6869"
        )
        assert answer["data"] == "6869"
        assert answer["remotePublicKey"] == SERVER.public_key.hex()
        await server.aclose()


async def test_js_client_connects_to_a_python_server_announced_through_python_nodes() -> None:
    async with create_testnet(4) as testnet, js_hyperdht(bootstrap=testnet.bootstrap) as js:
        server_node = await testnet.create_node()
        server = server_node.create_server(echo)
        await server.listen(SERVER)
        answer = await js.call(
            "connect", publicKey=SERVER.public_key.hex(), seed=CLIENT_SEED.hex(), message="00ff"
        )
        assert answer["data"] == "00ff"


async def test_python_server_announcing_through_js_nodes_mixed_network() -> None:
    # a mixed network: only JS nodes store the (ephemeral) Python server's route, so they
    # relay the Python client's handshake to it
    async with (
        js_hyperdht(testnet=4, client=False) as js,
        python_node(js.bootstrap, ephemeral=True) as server_node,
        python_node(js.bootstrap, ephemeral=True) as client,
    ):
        server = server_node.create_server(echo)
        await server.listen(SERVER)
        js_ports = {node["port"] for node in js.nodes}
        assert server.relays and all(port in js_ports for _, port in server.relays)
        async with await client.connect(SERVER.public_key, key_pair=CLIENT) as connection:
            assert await roundtrip(connection, b"mixed") == b"mixed"
        await server.aclose()
