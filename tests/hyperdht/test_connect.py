"""Connect by key and serve on a Python testnet: the relayed PEER_HANDSHAKE, the secret
stream over UDX on the DHT's own socket, the server's firewall and handshake state."""

from __future__ import annotations

import anyio
import pytest

from p2pswarm.connection import Connection
from p2pswarm.hyperdht import create_testnet
from p2pswarm.keys import KeyPair

pytestmark = pytest.mark.anyio

SERVER = KeyPair.from_seed(b"s" * 32)
CLIENT = KeyPair.from_seed(b"c" * 32)


async def echo(connection: Connection) -> None:
    try:
        while True:
            await connection.send(await connection.receive())
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass


async def roundtrip(connection: Connection, message: bytes) -> bytes:
    await connection.send(message)
    got = b""
    while len(got) < len(message):
        got += await connection.receive()
    return got


async def test_connect_by_key_on_a_python_testnet() -> None:
    async with create_testnet(5) as testnet:
        server_node = await testnet.create_node()
        server = server_node.create_server(echo)
        await server.listen(SERVER)
        client = await testnet.create_node()
        connection = await client.connect(SERVER.public_key, key_pair=CLIENT)
        async with connection:
            assert connection.remote_public_key == SERVER.public_key
            assert await roundtrip(connection, b"hello over udx") == b"hello over udx"
            big = bytes(range(256)) * 2000
            assert await roundtrip(connection, big) == big
        assert server.stats["connections"] == 1
        await server.aclose()
