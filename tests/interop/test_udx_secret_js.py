"""Our encrypted Connection over our UDX against JS @hyperswarm/secret-stream over
udx-native: the whole Hyperswarm connection stack below the DHT, both roles, IK and XX,
data both ways checked by SHA-256, the same keys and handshake hash on both ends."""

from __future__ import annotations

import hashlib
import os

import anyio
import pytest

from p2pswarm import KeyPair
from p2pswarm.connection import Connection
from p2pswarm.transports._handshake import initiate_handshake
from p2pswarm.transports.udx import Faults, accept_udx, open_udx_socket

from ._js import SKIP_REASON
from ._js_udx import js_udx_peer

pytestmark = [
    pytest.mark.interop,
    pytest.mark.anyio,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

LIMIT = 60


async def receive_all(conn: Connection) -> bytes:
    received = bytearray()
    while True:
        try:
            received += await conn.receive()
        except anyio.EndOfStream:
            return bytes(received)


async def exchange(conn: Connection, data: bytes) -> bytes:
    async def send() -> None:
        for offset in range(0, len(data), 65536):
            await conn.send(data[offset : offset + 65536])
        await conn.send_eof()

    async with anyio.create_task_group() as tg:
        tg.start_soon(send)
        received = await receive_all(conn)
    return received


@pytest.mark.parametrize(
    ("py_role", "pattern", "lossy"),
    [
        ("initiator", "IK", False),
        ("initiator", "XX", False),
        ("responder", "XX", False),
        ("responder", "IK", False),
        ("initiator", "IK", True),
    ],
)
async def test_connection_over_udx_with_js(py_role: str, pattern: str, lossy: bool) -> None:
    ours = KeyPair.generate()
    js_seed = os.urandom(32)
    js_keys = KeyPair.from_seed(js_seed)
    data = os.urandom(1 << 20)
    js_role = "responder" if py_role == "initiator" else "initiator"
    options: dict[str, object] = {
        "secret": js_role,
        "pattern": pattern,
        "seed": js_seed.hex(),
        "send_bytes": 700_000,
    }
    if js_role == "initiator" and pattern == "IK":
        options["remote_public_key"] = ours.public_key.hex()
    faults = Faults(seed=5, drop=0.02, reorder=0.02) if lossy else None
    async with (
        open_udx_socket(faults=faults) as socket,
        js_udx_peer(socket, **options) as (peer, (stream,)),
    ):
        with anyio.fail_after(LIMIT):
            if py_role == "initiator":
                remote_key = js_keys.public_key if pattern == "IK" else None
                conn = await initiate_handshake(stream, key_pair=ours, remote_public_key=remote_key)
            else:
                conn = await accept_udx(stream, key_pair=ours)
            async with conn:
                received = await exchange(conn, data)
                (report,) = (await peer.result())["streams"]
        assert conn.remote_public_key == js_keys.public_key
        assert report["remotePublicKey"] == ours.public_key.hex()
        assert report["handshakeHash"] == conn.handshake_hash.hex()
        assert report["receivedSha256"] == hashlib.sha256(data).hexdigest()
        assert hashlib.sha256(received).hexdigest() == report["sentSha256"]
