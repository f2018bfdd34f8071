"""Run ``js_peer.js`` (the real ``@hyperswarm/secret-stream``) as a subprocess.

The node process prints JSON lines on stdout: ``listening`` (a responder's port), then one
``result`` or ``error``. Every process is bounded twice: it exits by itself after its
``--timeout-ms``, and :class:`JsPeer` kills it on the way out whatever happened.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

HERE = Path(__file__).resolve().parent
NODE = shutil.which("node")
JS_PEER = HERE / "js_peer.js"
NODE_MODULES = HERE / "node_modules"

#: Why the interop tests cannot run here, or None when they can.
SKIP_REASON: str | None = None
if NODE is None:
    SKIP_REASON = "node is not installed: the interop tests need the real JS secret-stream"
elif not (NODE_MODULES / "@hyperswarm" / "secret-stream").is_dir():
    SKIP_REASON = f"the JS fixture is not installed: run `npm ci` in {HERE}"

#: How long a node process may live; the tests' own bounds are shorter.
PROCESS_TIMEOUT_MS = 60_000
MAX_LINE = 1 << 20


class JsPeerError(AssertionError):
    """The JS peer reported an error or did not say what it should have."""


class JsPeer:
    """One running ``js_peer.js``; read its announcements with the methods below."""

    def __init__(self, process: Process) -> None:
        assert process.stdout is not None
        self.process = process
        self._lines = BufferedByteReceiveStream(process.stdout)

    async def _next(self) -> dict[str, Any]:
        try:
            line = await self._lines.receive_until(b"\n", MAX_LINE)
        except (anyio.EndOfStream, anyio.IncompleteRead):
            code = await self.process.wait()
            raise JsPeerError(f"js_peer.js exited ({code}) without a result") from None
        message: dict[str, Any] = json.loads(line)
        if message.get("event") == "error":
            raise JsPeerError("js_peer.js failed: " + str(message.get("message")))
        return message

    async def listening_port(self) -> int:
        message = await self._next()
        if message.get("event") != "listening":
            raise JsPeerError(f"expected 'listening', got {message!r}")
        return int(message["port"])

    async def result(self) -> dict[str, Any]:
        """The ``result`` line; the process must then exit with status 0."""
        message = await self._next()
        if message.get("event") != "result":
            raise JsPeerError(f"expected 'result', got {message!r}")
        code = await self.process.wait()
        if code != 0:
            raise JsPeerError(f"js_peer.js exited with status {code}")
        return message


def _options(**options: object) -> list[str]:
    args = []
    for name, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        args.append(flag if value is True else f"{flag}={value}")
    return args


@asynccontextmanager
async def js_peer(**options: object) -> AsyncIterator[JsPeer]:
    """Start ``node js_peer.js`` with ``--option=value`` for each keyword (``_`` -> ``-``)."""
    assert NODE is not None, SKIP_REASON
    options.setdefault("timeout_ms", PROCESS_TIMEOUT_MS)
    command = [NODE, str(JS_PEER), *_options(**options)]
    process = await anyio.open_process(command, stdin=None, stderr=None, cwd=HERE)
    try:
        yield JsPeer(process)
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            await process.aclose()


async def js_key_pair(seed: bytes, message: bytes = b"") -> dict[str, Any]:
    """The key pair (and a signature of ``message``) JS derives from ``seed``."""
    async with js_peer(keypair=True, seed=seed.hex(), message=message.hex() or None) as peer:
        return await peer.result()
