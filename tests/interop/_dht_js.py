"""Drive ``dht_rpc_net.js`` (real JS dht-rpc and HyperDHT nodes) from a test."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from ._js import HERE, NODE, NODE_MODULES

SKIP_REASON: str | None = None
if NODE is None or not (NODE_MODULES / "hyperdht").is_dir():
    SKIP_REASON = "node and the pinned JS fixture (npm ci in tests/interop) are needed"

#: Longest one command may take (a JS bootstrap walk on a small loopback net is well under).
COMMAND_TIMEOUT = 30.0


def free_udp_port() -> int:
    """A port free on 127.0.0.1 right now (JS nodes get explicit ports, never 49737)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class JsNetwork:
    def __init__(self, process: Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self._lines = BufferedByteReceiveStream(process.stdout)

    async def call(self, **message: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        await self.process.stdin.send((json.dumps(message) + "\n").encode())
        with anyio.fail_after(COMMAND_TIMEOUT):
            line = await self._lines.receive_until(b"\n", 1 << 20)
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise AssertionError("dht_rpc_net.js: " + reply["error"])
        return reply

    async def start(self, **options: Any) -> dict[str, Any]:
        options.setdefault("port", free_udp_port())
        return await self.call(op="start", **options)

    async def table(self, i: int) -> dict[str, Any]:
        return await self.call(op="table", i=i)


@asynccontextmanager
async def js_network() -> AsyncIterator[JsNetwork]:
    assert NODE is not None, SKIP_REASON
    process = await anyio.open_process(
        [NODE, str(HERE / "dht_rpc_net.js"), "--timeout-ms=90000"], stderr=None, cwd=HERE
    )
    try:
        net = JsNetwork(process)
        yield net
        with anyio.move_on_after(10, shield=True):
            await net.call(op="destroy")
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            await process.aclose()
