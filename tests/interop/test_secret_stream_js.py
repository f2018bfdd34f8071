"""A p2pswarm Connection and the real JavaScript ``@hyperswarm/secret-stream`` talk over TCP.

Both directions (a JS initiator against our listener, our ``connect_tcp`` against a JS
responder), for XX and for IK, over real sockets on 127.0.0.1: data both ways checked by
SHA-256, both half-close orders, keep-alives flowing and ignored, and each side reporting the
other's public key and the same handshake hash. JS peers send empty handshake payloads, so
these runs also prove that a plain secret-stream peer is accepted.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from p2pswarm import KeyPair, connect_tcp, create_tcp_listener
from p2pswarm.connection import DEFAULT_KEEPALIVE, Connection

from ._js import SKIP_REASON, js_peer

pytestmark = [
    pytest.mark.interop,
    pytest.mark.anyio,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

HOST = "127.0.0.1"
PATTERNS = ("XX", "IK")
SIDES = ("js-initiator", "py-initiator")
KIB = 1024
MIB = 1024 * KIB
#: A bound on each test's whole exchange; a healthy run takes well under a second.
EXCHANGE_TIMEOUT = 30


@dataclass
class Outcome:
    """What both ends saw of one exchange."""

    js: dict[str, Any]
    py_received: bytes
    py_sent: bytes
    py_public_key: bytes
    py_remote_public_key: bytes
    py_handshake_hash: bytes


async def receive_all(conn: Connection) -> bytes:
    """Read until the peer's half-close."""
    received = bytearray()
    while True:
        try:
            received += await conn.receive()
        except anyio.EndOfStream:
            return bytes(received)


async def send_all(conn: Connection, data: bytes, rng: random.Random) -> None:
    """Send ``data`` in writes of varied sizes (1 byte to 256 KiB), then half-close."""
    view = memoryview(data)
    offset = 0
    while offset < len(data):
        size = rng.choice((1, 1000, 64 * KIB, 256 * KIB, rng.randint(1, 100_000)))
        await conn.send(view[offset : offset + size])
        offset += size
    await conn.send_eof()


async def run_python_side(conn: Connection, payload: bytes, order: str, seed: int) -> bytes:
    """The Python half of js_peer.js's exchange (``order`` is from JS's point of view)."""
    rng = random.Random(seed)
    if order == "js-first":
        # JS sends and half-closes first; we still write after its FIN arrived.
        received = await receive_all(conn)
        await send_all(conn, payload, rng)
        return received
    if order == "py-first":
        # We half-close first; JS still writes after our FIN.
        await send_all(conn, payload, rng)
        return await receive_all(conn)
    received = b""

    async def reader() -> None:
        nonlocal received
        received = await receive_all(conn)

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await send_all(conn, payload, rng)
    return received


@asynccontextmanager
async def python_listener(
    key_pair: KeyPair, handler: Callable[[Connection], Awaitable[None]], keepalive: float
) -> AsyncIterator[int]:
    """Our listener on 127.0.0.1 serving ``handler``; yields its port."""
    listener = await create_tcp_listener(local_host=HOST, key_pair=key_pair, keepalive=keepalive)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        yield listener.local_address[1]
        tg.cancel_scope.cancel()


async def exchange(
    side: str,
    pattern: str,
    *,
    js_sends: int,
    py_sends: int,
    order: str = "concurrent",
    py_keepalive: float = DEFAULT_KEEPALIVE,
    **js_options: object,
) -> Outcome:
    """One connection between js_peer.js and us, each sending random bytes, then closing."""
    seed = random.randrange(2**32)
    payload = random.Random(seed).randbytes(py_sends)
    py_key_pair = KeyPair.generate()
    js_seed = os.urandom(32)
    js_options.update(pattern=pattern, seed=js_seed.hex(), send_bytes=js_sends, order=order)
    py_view: dict[str, Any] = {}
    conversed = anyio.Event()

    async def converse(conn: Connection) -> None:
        # The listener logs and swallows peer errors in handlers: keep ours for the test.
        try:
            async with conn:
                py_view["public_key"] = conn.public_key
                py_view["remote_public_key"] = conn.remote_public_key
                py_view["handshake_hash"] = conn.handshake_hash
                py_view["received"] = await run_python_side(conn, payload, order, seed)
        except Exception as exc:
            py_view["error"] = exc
        finally:
            conversed.set()

    with anyio.fail_after(EXCHANGE_TIMEOUT):
        if side == "js-initiator":
            if pattern == "IK":
                js_options["remote_public_key"] = py_key_pair.public_key.hex()
            async with python_listener(py_key_pair, converse, py_keepalive) as port:
                async with js_peer(role="initiator", port=port, **js_options) as js:
                    js_result = await js.result()
                await conversed.wait()
        else:
            remote = KeyPair.from_seed(js_seed).public_key if pattern == "IK" else None
            async with js_peer(role="responder", **js_options) as js:
                port = await js.listening_port()
                conn = await connect_tcp(
                    HOST,
                    port,
                    key_pair=py_key_pair,
                    remote_public_key=remote,
                    keepalive=py_keepalive,
                )
                await converse(conn)
                js_result = await js.result()
    if "error" in py_view:
        raise py_view["error"]
    return Outcome(
        js=js_result,
        py_received=py_view["received"],
        py_sent=payload,
        py_public_key=py_view["public_key"],
        py_remote_public_key=py_view["remote_public_key"],
        py_handshake_hash=py_view["handshake_hash"],
    )


def check(outcome: Outcome, *, js_sends: int, py_sends: int) -> None:
    js = outcome.js
    # Data both ways, complete and unaltered.
    assert len(outcome.py_received) == js["sentBytes"] == js_sends
    assert hashlib.sha256(outcome.py_received).hexdigest() == js["sentSha256"]
    assert js["receivedBytes"] == len(outcome.py_sent) == py_sends
    assert js["receivedSha256"] == hashlib.sha256(outcome.py_sent).hexdigest()
    # Each side names the other, and both derived the same handshake hash.
    assert bytes.fromhex(js["remotePublicKey"]) == outcome.py_public_key
    assert outcome.py_remote_public_key == bytes.fromhex(js["publicKey"])
    assert bytes.fromhex(js["handshakeHash"]) == outcome.py_handshake_hash


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("size", [1, 64 * KIB, 5 * MIB], ids=["1B", "64KiB", "5MiB"])
async def test_data_both_ways(side: str, pattern: str, size: int) -> None:
    outcome = await exchange(side, pattern, js_sends=size, py_sends=size)
    check(outcome, js_sends=size, py_sends=size)


@pytest.mark.parametrize("side", SIDES)
async def test_one_5_mib_js_message_arrives_whole(side: str) -> None:
    # secret-stream writes each write() as one frame of up to 16 MiB - 1; ours must take it.
    outcome = await exchange(side, "XX", js_sends=5 * MIB, py_sends=1, chunk=5 * MIB)
    check(outcome, js_sends=5 * MIB, py_sends=1)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("order", ["js-first", "py-first"])
async def test_half_close_keeps_the_other_direction_open(
    side: str, pattern: str, order: str
) -> None:
    outcome = await exchange(side, pattern, js_sends=300 * KIB, py_sends=200 * KIB, order=order)
    check(outcome, js_sends=300 * KIB, py_sends=200 * KIB)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("side", SIDES)
async def test_keep_alives_flow_both_ways_and_are_ignored(side: str, pattern: str) -> None:
    # Both sides send a keep-alive after 10 ms without a write. JS waits until three of its
    # own went out before sending data, and, before ending, until three of ours arrived
    # (we are reading then: "js-first"). Neither kind may show up as data.
    outcome = await exchange(
        side,
        pattern,
        js_sends=5000,
        py_sends=7000,
        order="js-first",
        py_keepalive=0.01,
        keep_alive_ms=10,
        await_keepalives=3,
        await_remote_keepalives=3,
    )
    check(outcome, js_sends=5000, py_sends=7000)
    assert outcome.js["keepalivesSent"] >= 3
    assert outcome.js["keepalivesReceived"] >= 3
