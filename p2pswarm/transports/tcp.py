"""TCP: dialling and listening, and the direct (DHT-free) API in anyio's naming.

* :func:`connect_tcp` and :func:`create_tcp_listener` dial or listen and run the handshake
  (:mod:`._handshake`), returning :class:`~p2pswarm.connection.Connection` objects.
* :class:`TCPDialer` is the :class:`~.base.Dialer` that tries a record's direct addresses
  in order; :class:`TCPTransport` the :class:`~.base.Transport` the swarm listens through.
* On asyncio the sockets are the lean asyncio stream (:mod:`._asyncio_stream`); anyio's
  ``SocketStream`` on any other backend.

Listening sockets set ``SO_REUSEADDR`` and ``SO_REUSEPORT`` so the listening port can later
also be the source port of dials (a coordinated TCP simultaneous open).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeAlias

import anyio
from anyio.abc import ByteStream, SocketAttribute, SocketListener, SocketStream, TaskGroup
from anyio.streams.stapled import MultiListener

from ..connection import DEFAULT_IDLE_TIMEOUT, DEFAULT_KEEPALIVE, Connection
from ..errors import DialError, DialRefusedError, HandshakeRefusedError, P2PSwarmError
from ..keys import KeyPair, check_public_key
from ..peer_record import PeerRecord
from ..protocol import MAX_FRAME_SIZE
from . import _asyncio_stream
from ._handshake import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    MAX_PENDING_HANDSHAKES,
    Authorize,
    accept_handshake,
    check_times,
    initiate_handshake,
    stream_address,
)

__all__ = (
    "DEFAULT_CONNECT_TIMEOUT",
    "ConnectionListener",
    "TCPDialer",
    "TCPTransport",
    "connect_tcp",
    "create_socket_listener",
    "create_tcp_listener",
    "open_tcp_stream",
)

#: The logger keeps its name from before the transports package: configurations use it.
logger = logging.getLogger("p2pswarm.transport")

#: Seconds a TCP connect may take before the dialler moves on to the next address.
DEFAULT_CONNECT_TIMEOUT: Final = 5.0


async def connect_tcp(
    host: str,
    port: int,
    *,
    key_pair: KeyPair | None = None,
    remote_public_key: bytes | None = None,
    topics: Sequence[bytes] = (),
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
    keepalive: float | None = DEFAULT_KEEPALIVE,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
) -> Connection:
    """Dial ``host:port`` over TCP and run the handshake (IK with ``remote_public_key``,
    else XX). A fresh key pair is made when ``key_pair`` is None.

    :raises ~p2pswarm.errors.DialError: the TCP connection could not be made
    :raises ~p2pswarm.errors.HandshakeError: the handshake failed (wrong key, garbage, ...)
    """
    check_times(
        connect_timeout=connect_timeout,
        handshake_timeout=handshake_timeout,
        keepalive=keepalive,
        idle_timeout=idle_timeout,
    )
    if remote_public_key is not None:
        remote_public_key = check_public_key(remote_public_key, "remote public key")
    if key_pair is None:
        key_pair = KeyPair.generate()
    try:
        with anyio.fail_after(connect_timeout):
            stream = await open_tcp_stream(host, port)
    except TimeoutError:
        reason = f"{host}:{port}: connect timed out after {connect_timeout} s"
        raise DialError(f"cannot connect to {host}:{port}", (reason,)) from None
    except OSError as exc:
        reason = f"{host}:{port}: {exc.strerror or exc}"
        raise DialError(f"cannot connect to {host}:{port}", (reason,)) from exc
    return await initiate_handshake(
        stream,
        key_pair=key_pair,
        remote_public_key=remote_public_key,
        topics=topics,
        remote_address=(host, port),
        handshake_timeout=handshake_timeout,
        keepalive=keepalive,
        idle_timeout=idle_timeout,
    )


async def open_tcp_stream(host: str, port: int) -> SocketStream:
    """A plain TCP stream to ``host:port``: the lean asyncio stream on asyncio
    (:mod:`._asyncio_stream`, a third less latency per small message), anyio's
    ``SocketStream`` on any other backend.

    :raises OSError: the connection could not be made
    """
    if _asyncio_stream.running_on_asyncio():
        return await _asyncio_stream.connect(host, port)
    return await anyio.connect_tcp(host, port)


async def create_socket_listener(
    *, local_host: str, local_port: int = 0
) -> MultiListener[SocketStream]:
    """Plain TCP listening sockets (``SO_REUSEADDR`` and ``SO_REUSEPORT``) whose accepted
    streams are the lean asyncio stream on asyncio, anyio's on any other backend.

    A drop-in for ``anyio.create_tcp_listener(local_host=..., local_port=...,
    reuse_port=True)``: the result has the same ``listeners`` and typed attributes.
    """
    listener = await anyio.create_tcp_listener(
        local_host=local_host, local_port=local_port, reuse_port=True
    )
    if not _asyncio_stream.running_on_asyncio():
        return listener
    inner = [sub for sub in listener.listeners if isinstance(sub, SocketListener)]
    return MultiListener([_asyncio_stream.AsyncioSocketListener(sub) for sub in inner])


Handler: TypeAlias = Callable[[Connection], Awaitable[Any]]

#: Errors a peer can cause inside a connection handler: they end that connection only.
_PEER_ERRORS = (
    P2PSwarmError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    OSError,
)


class ConnectionListener(anyio.abc.Listener[Connection]):
    """Accepts TCP connections and hands out handshaken :class:`Connection` objects."""

    def __init__(
        self,
        listeners: Sequence[SocketListener],
        *,
        key_pair: KeyPair,
        authorize: Authorize | None = None,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        keepalive: float | None = DEFAULT_KEEPALIVE,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        max_frame_size: int = MAX_FRAME_SIZE,
    ) -> None:
        if not listeners:
            raise ValueError("need at least one socket listener")
        self._listeners = tuple(listeners)
        self._ready: deque[SocketStream] = deque()
        address = self._listeners[0].extra(SocketAttribute.local_address)
        assert isinstance(address, tuple)
        self._local_address = (str(address[0]), int(address[1]))
        self._closed = False
        self._pending_handshakes = 0
        self._max_pending_handshakes = MAX_PENDING_HANDSHAKES
        self.key_pair = key_pair
        self._authorize = authorize
        self._options: dict[str, Any] = {
            "handshake_timeout": handshake_timeout,
            "keepalive": keepalive,
            "idle_timeout": idle_timeout,
            "max_frame_size": max_frame_size,
        }

    @property
    def public_key(self) -> bytes:
        """The key pair's public key: what IK dialers must know."""
        return self.key_pair.public_key

    @property
    def local_address(self) -> tuple[str, int]:
        """The (host, port) the listener is bound to (the first, if several)."""
        return self._local_address

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self._listeners[0].extra_attributes

    async def _accept_socket(self) -> SocketStream:
        """The next accepted socket from any of the (usually one) bound sockets."""
        if not self._ready:
            if len(self._listeners) == 1:
                return await self._listeners[0].accept()
            async with anyio.create_task_group() as group:

                async def accept_from(listener: SocketListener) -> None:
                    self._ready.append(await listener.accept())
                    group.cancel_scope.cancel()

                for listener in self._listeners:
                    group.start_soon(accept_from, listener)
        return self._ready.popleft()

    async def _accept_one(self, stream: ByteStream) -> Connection | None:
        address = stream_address(stream)
        try:
            return await accept_handshake(
                stream,
                key_pair=self.key_pair,
                remote_address=address,
                authorize=self._authorize,
                **self._options,
            )
        except P2PSwarmError as exc:
            logger.info("handshake with %s:%d failed: %s", address[0], address[1], exc)
            return None

    async def accept(self) -> Connection:
        """Accept the next peer whose handshake succeeds (failures are logged and skipped).

        Handshakes run one at a time here; :meth:`serve` runs them concurrently.
        """
        while True:
            stream = await self._accept_socket()
            connection = await self._accept_one(stream)
            if connection is not None:
                return connection

    async def serve(self, handler: Handler, task_group: TaskGroup | None = None) -> None:
        """Accept until :meth:`aclose`; each socket is handshaken in its own task, then given to
        ``handler`` with keep-alives running beside it, and closed when it returns.

        A failed handshake closes that socket only and is logged (logger
        ``p2pswarm.transport``). Errors a peer can cause inside the handler (protocol
        errors, idle timeouts, broken or ended streams) end that connection only and are
        logged; any other exception propagates, as in anyio.
        """

        async def run(stream: ByteStream) -> None:
            if self._pending_handshakes >= self._max_pending_handshakes:
                await anyio.aclose_forcefully(stream)
                return
            self._pending_handshakes += 1
            try:
                connection = await self._accept_one(stream)
            finally:
                self._pending_handshakes -= 1
            if connection is None:
                return
            try:
                async with anyio.create_task_group() as group:
                    group.start_soon(connection.run_keepalive)
                    try:
                        await handler(connection)
                    finally:
                        await connection.aclose()
            except* _PEER_ERRORS as group_error:
                host, port = connection.remote_address
                for error in group_error.exceptions:
                    logger.info("connection with %s:%d ended: %r", host, port, error)

        async with anyio.create_task_group() as own_group:
            group = task_group if task_group is not None else own_group
            while True:
                try:
                    stream = await self._accept_socket()
                except anyio.ClosedResourceError:
                    if self._closed:
                        return  # aclose() ends serve(); running handlers finish first
                    raise
                group.start_soon(run, stream)

    async def aclose(self) -> None:
        """Stop listening; connections already handed out stay open."""
        self._closed = True
        for listener in self._listeners:
            await listener.aclose()
        for stream in self._ready:
            await anyio.aclose_forcefully(stream)
        self._ready.clear()


async def create_tcp_listener(
    *,
    local_host: str,
    local_port: int = 0,
    key_pair: KeyPair | None = None,
    authorize: Authorize | None = None,
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
    keepalive: float | None = DEFAULT_KEEPALIVE,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    max_frame_size: int = MAX_FRAME_SIZE,
) -> ConnectionListener:
    """Listen for secret-stream peers on ``local_host:local_port`` (0: any free port).

    The sockets set ``SO_REUSEADDR`` and ``SO_REUSEPORT``. A fresh key pair is made when
    ``key_pair`` is None; read it back from ``listener.key_pair``.
    """
    check_times(handshake_timeout=handshake_timeout, keepalive=keepalive, idle_timeout=idle_timeout)
    if key_pair is None:
        key_pair = KeyPair.generate()
    listener = await create_socket_listener(local_host=local_host, local_port=local_port)
    sockets = [inner for inner in listener.listeners if isinstance(inner, SocketListener)]
    return ConnectionListener(
        sockets,
        key_pair=key_pair,
        authorize=authorize,
        handshake_timeout=handshake_timeout,
        keepalive=keepalive,
        idle_timeout=idle_timeout,
        max_frame_size=max_frame_size,
    )


# -- dialling ---------------------------------------------------------------------------------


class TCPTransport:
    """The TCP :class:`~.base.Transport`: what a swarm listens through today."""

    async def listen(self, *, local_host: str, local_port: int = 0) -> MultiListener[SocketStream]:
        """Plain TCP listening sockets (see :func:`create_socket_listener`)."""
        return await create_socket_listener(local_host=local_host, local_port=local_port)


class TCPDialer:
    """Dials a record's direct addresses over TCP, in order, with IK to its public key."""

    def __init__(
        self,
        *,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        keepalive: float | None = DEFAULT_KEEPALIVE,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.handshake_timeout = handshake_timeout
        self.keepalive = keepalive
        self.idle_timeout = idle_timeout

    async def dial(
        self, record: PeerRecord, *, key_pair: KeyPair, topics: Sequence[bytes] = ()
    ) -> Connection:
        """Try each direct address; return the first connection whose handshake succeeds.

        :raises ~p2pswarm.errors.DialError: every address failed (``reasons`` says how)
        """
        reasons: list[str] = []
        refused = False
        for address in record.direct_addresses:
            try:
                return await connect_tcp(
                    address.host,
                    address.port,
                    key_pair=key_pair,
                    remote_public_key=record.public_key,
                    topics=topics,
                    connect_timeout=self.connect_timeout,
                    handshake_timeout=self.handshake_timeout,
                    keepalive=self.keepalive,
                    idle_timeout=self.idle_timeout,
                )
            except DialError as exc:
                reasons.extend(exc.reasons or (f"{address}: {exc}",))
            except HandshakeRefusedError as exc:
                refused = True  # reached and refused; another address may be someone else
                reasons.append(f"{address}: HandshakeError: {exc}")
            except P2PSwarmError as exc:
                reasons.append(f"{address}: {type(exc).__name__}: {exc}")
        peer = record.public_key.hex()[:16]
        if refused:
            # Typed, so that a swarm does not count a refusal under the dedup rule as a failure.
            raise DialRefusedError(f"peer {peer}… refused us", tuple(reasons))
        if not reasons:
            raise DialError(f"peer {peer}… has no direct address to dial")
        raise DialError(f"could not reach peer {peer}… at any address", tuple(reasons))
