"""Run ``js_udx_peer.js`` (real udx-native streams) against streams on one of our sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from p2pswarm.transports.udx import UDXSocket, UDXStream

from ._js import HERE, NODE, PROCESS_TIMEOUT_MS, SKIP_REASON, JsPeer, JsPeerError, _options

__all__ = ("JsUdxPeer", "js_udx_peer")

JS_UDX_PEER = HERE / "js_udx_peer.js"


class JsUdxPeer(JsPeer):
    async def ready(self) -> dict[str, Any]:
        message = await self._next()
        if message.get("event") != "ready":
            raise JsPeerError(f"expected 'ready', got {message!r}")
        return message


@asynccontextmanager
async def js_udx_peer(
    socket: UDXSocket, count: int = 1, **options: object
) -> AsyncIterator[tuple[JsUdxPeer, list[UDXStream]]]:
    """Make ``count`` streams on ``socket``, start the JS peer with one stream for each, and
    connect ours to theirs. Yields the peer and our streams."""
    assert NODE is not None, SKIP_REASON
    streams = [socket.create_stream() for _ in range(count)]
    options.setdefault("timeout_ms", PROCESS_TIMEOUT_MS)
    options["remote_port"] = socket.local_address[1]
    options["remote_ids"] = ",".join(str(s.id) for s in streams)
    command = [NODE, str(JS_UDX_PEER), *_options(**options)]
    process = await anyio.open_process(command, stdin=None, stderr=None, cwd=HERE)
    try:
        peer = JsUdxPeer(process)
        ready = await peer.ready()
        for stream, remote_id in zip(streams, ready["ids"], strict=True):
            stream.connect(int(remote_id), "127.0.0.1", int(ready["port"]))
        yield peer, streams
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            await process.aclose()
