"""Running the application's connection handlers, and the small I/O helpers around them.

A handler's failure is contained: it closes that one connection and is logged on the
``p2pswarm.swarm`` logger, at INFO without a traceback when the peer caused it (the stream
broke, ended, or broke the protocol), at ERROR with the traceback when it is an application
bug. Nothing propagates into the swarm, so no "error handler" is ever required.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

import anyio
import anyio.abc

from ..connection import Connection
from ..errors import P2PSwarmError
from .peer_info import PeerInfo

__all__ = (
    "ConnectionHandler",
    "Firewall",
    "accept_forever",
    "close_quietly",
    "keepalive_loop",
    "run_handlers",
    "send_probe",
)

logger = logging.getLogger("p2pswarm.swarm")

ConnectionHandler = Callable[[Connection, PeerInfo], Awaitable[None] | None]
#: ``firewall(remote_public_key, (host, port)) -> bool``; True rejects (and bans). May be async.
Firewall = Callable[[bytes, tuple[str, int]], bool | Awaitable[bool]]

#: What a peer (not the application) can make a handler raise: logged without a traceback.
PEER_ERRORS = (
    P2PSwarmError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    OSError,
)


async def close_quietly(resource: anyio.abc.AsyncResource) -> None:
    """Close ``resource`` even while cancelled; a failure to close is only logged."""
    with anyio.CancelScope(shield=True):
        try:
            await resource.aclose()
        except Exception as exc:
            logger.debug("closing %r failed: %r", resource, exc)


async def run_handlers(
    handlers: Iterable[ConnectionHandler], conn: Connection, peer: PeerInfo
) -> None:
    """Call every handler; each async one runs in its own task. The connection is closed
    when the last async handler has returned (or at once if one raised)."""
    awaited = 0
    async with anyio.create_task_group() as tg:
        for handler in handlers:
            try:
                result = handler(conn, peer)
            except Exception as exc:
                await _handler_failed(handler, conn, exc)
                continue
            if inspect.isawaitable(result):
                awaited += 1
                tg.start_soon(_await_handler, handler, conn, result)
    if awaited:
        await close_quietly(conn)


async def _await_handler(handler: object, conn: Connection, awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception as exc:
        await _handler_failed(handler, conn, exc)


async def _handler_failed(handler: object, conn: Connection, exc: Exception) -> None:
    peer = conn.remote_public_key.hex()[:16]
    if isinstance(exc, PEER_ERRORS):
        logger.info("connection to %s… ended in handler %r: %r", peer, handler, exc)
    else:
        logger.error(
            "connection handler %r raised; closing the connection to %s…",
            handler,
            peer,
            exc_info=exc,
        )
    await close_quietly(conn)


async def send_probe(conn: Connection) -> None:
    """One keep-alive, to make a dead connection surface; failures are expected."""
    try:
        await conn.send_keepalive()
    except Exception as exc:
        logger.debug("keep-alive probe on %r failed: %r", conn, exc)


async def keepalive_loop(conn: Connection) -> None:
    """Keep the peer's idle timer fed while the connection is open."""
    try:
        await conn.run_keepalive()
    except Exception as exc:
        logger.debug("keep-alive loop on %r ended: %r", conn, exc)
        await close_quietly(conn)


async def accept_forever(
    listener: anyio.abc.Listener[anyio.abc.SocketStream],
    handle: Callable[[anyio.abc.SocketStream], Coroutine[Any, Any, None]],
    closing: Callable[[], bool],
) -> None:
    """Accept TCP streams (on every socket of a multi-listener) and handle each in its own
    task until the listener is closed. Handlers are started in a task group of their own,
    so a closed listener never raises into the caller."""
    sockets: list[anyio.abc.SocketListener] = getattr(listener, "listeners", [listener])

    async def accept_loop(inner: anyio.abc.SocketListener) -> None:
        while True:
            try:
                stream = await inner.accept()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError) as exc:
                if not closing():
                    logger.warning("the swarm stopped accepting connections: %r", exc)
                return
            tg.start_soon(handle, stream)

    async with anyio.create_task_group() as tg:
        for inner in sockets:
            tg.start_soon(accept_loop, inner)
