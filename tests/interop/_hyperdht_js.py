"""Run ``hyperdht_node.js`` (real JS HyperDHT nodes) as a subprocess and drive it.

The process prints a ``ready`` line (its nodes' addresses), then answers one JSON line per
command. It is bounded twice: it exits by itself after ``timeout_ms``, and
:func:`js_hyperdht` kills it on the way out whatever happened.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from ._js import HERE, NODE, NODE_MODULES

SCRIPT = HERE / "hyperdht_node.js"
SKIP_REASON: str | None = None
if NODE is None:
    SKIP_REASON = "node is not installed: the interop tests need the real JS hyperdht"
elif not (NODE_MODULES / "hyperdht").is_dir():
    SKIP_REASON = f"the JS fixture is not installed: run `npm ci` in {HERE}"

MAX_LINE = 1 << 22
#: One command's bound: a JS query on a loopback testnet takes well under a second.
COMMAND_TIMEOUT = 30.0


class JsHyperDHTError(AssertionError):
    """The JS side failed a command or stopped talking."""


class JsHyperDHT:
    """A running ``hyperdht_node.js``: ``ready`` holds its addresses, :meth:`call` a command."""

    def __init__(self, process: Process) -> None:
        assert process.stdout is not None and process.stdin is not None
        self.process = process
        self._lines = BufferedByteReceiveStream(process.stdout)
        self._ids = itertools.count(1)
        self.ready: dict[str, Any] = {}

    async def _next(self) -> dict[str, Any]:
        try:
            line = await self._lines.receive_until(b"\n", MAX_LINE)
        except (anyio.EndOfStream, anyio.IncompleteRead):
            code = await self.process.wait()
            raise JsHyperDHTError(f"hyperdht_node.js exited ({code})") from None
        message: dict[str, Any] = json.loads(line)
        if message.get("event") == "error":
            raise JsHyperDHTError("hyperdht_node.js failed: " + str(message.get("message")))
        return message

    @property
    def bootstrap(self) -> list[tuple[str, int]]:
        return [(a["host"], a["port"]) for a in self.ready["bootstrap"]]

    @property
    def nodes(self) -> list[dict[str, Any]]:
        return list(self.ready["nodes"])

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        """Run one command (hex for bytes) and return its answer; raise if it failed."""
        assert self.process.stdin is not None
        ident = next(self._ids)
        line = json.dumps({"id": ident, "op": op, **args}) + "\n"
        with anyio.fail_after(COMMAND_TIMEOUT):
            await self.process.stdin.send(line.encode())
            message = await self._next()
        if message.get("id") != ident:
            raise JsHyperDHTError(f"expected the answer to {ident}, got {message!r}")
        if not message.get("ok"):
            raise JsHyperDHTError(f"{op} failed in JS: {message.get('error')}")
        return message


@asynccontextmanager
async def js_hyperdht(
    *,
    testnet: int = 0,
    nodes: int = 0,
    bootstrap: list[tuple[str, int]] | None = None,
    client: bool = True,
    timeout_ms: int = 60_000,
) -> AsyncIterator[JsHyperDHT]:
    """``testnet`` nodes of a new JS network, or ``nodes`` joining ``bootstrap``."""
    assert NODE is not None, SKIP_REASON
    command = [NODE, str(SCRIPT), f"--timeout-ms={timeout_ms}"]
    if testnet:
        command.append(f"--testnet={testnet}")
    if nodes:
        command.append(f"--nodes={nodes}")
    if bootstrap:
        command.append("--bootstrap=" + ",".join(f"{h}:{p}" for h, p in bootstrap))
    if client:
        command.append("--client")
    process = await anyio.open_process(command, stderr=None, cwd=HERE)
    try:
        js = JsHyperDHT(process)
        with anyio.fail_after(COMMAND_TIMEOUT):
            js.ready = await js._next()
        if js.ready.get("event") != "ready":
            raise JsHyperDHTError(f"expected 'ready', got {js.ready!r}")
        yield js
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            await process.aclose()
