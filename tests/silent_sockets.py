"""Strangers who connect and say nothing: the shared piece of the handshake-flood tests."""

from __future__ import annotations

import anyio
import anyio.abc


async def closed_by_peer(
    index: int, stream: anyio.abc.SocketStream, out: list[int], done: anyio.Event
) -> None:
    """Record ``index`` in ``out`` and set ``done`` once the other side closes ``stream``."""
    try:
        await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        out.append(index)
        done.set()
