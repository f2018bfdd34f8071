"""Extra UDP sockets for hole punching (``hyperdht/lib/socket-pool.js``).

A hole puncher does not punch from the DHT's own socket: each attempt gets fresh sockets,
so its NAT mappings are its own and can be measured (PINGs to DHT nodes from that socket)
and multiplied (the birthday punch opens up to 256). Each :class:`PooledSocket` is a
:class:`~p2pswarm.transports.udx.UDXSocket` on any port: one-byte datagrams are hole-punch
probes for its owner, dht-rpc responses go to the node (:meth:`foreign_response`), UDX
packets to the stream a punched path moved onto it.

A socket lives until it is released and no stream uses it any more; the pool holds at most
:data:`MAX_POOLED` at once (a node's punches share that bound), so no flood of handshakes
can make a node open sockets without limit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, Final, Protocol

import anyio

from ..errors import DHTError
from ..protocol.udx import is_udx
from ..transports.udx import UDXSocket, UDXStream, open_udx_socket
from .rpc import Address

__all__ = ("MAX_POOLED", "PoolHost", "PooledSocket", "SocketPool")

#: Sockets open at once over all of a node's hole punches (one birthday punch is 256).
MAX_POOLED: Final = 320
#: Seconds a socket opening may take before the attempt counts as failed.
OPEN_TIMEOUT: Final = 5.0


class PoolHost(Protocol):
    @property
    def closed(self) -> bool: ...

    def start_task(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None: ...

    def foreign_response(self, data: bytes, address: Address) -> None: ...


class PooledSocket:
    """One pooled socket (``SocketRef``)."""

    __slots__ = ("_pool", "_released", "keep_for", "on_probe", "on_udx", "socket")

    def __init__(self, pool: SocketPool) -> None:
        self._pool = pool
        self.socket: UDXSocket | None = None
        #: ``on_probe(pooled, address)``: a one-byte datagram arrived.
        self.on_probe: Callable[[PooledSocket, Address], None] | None = None
        #: ``on_udx(pooled, data, address)``: a UDX packet for no stream of this socket
        #: (the peer's first packet on a punched path, for a stream still elsewhere).
        self.on_udx: Callable[[PooledSocket, bytes, Address], None] | None = None
        #: A stream moved onto this socket: it stays open until that stream closes.
        self.keep_for: UDXStream | None = None
        self._released = anyio.Event()

    @property
    def address(self) -> Address:
        assert self.socket is not None
        return self.socket.local_address

    def send(self, data: bytes, address: Address, *, ttl: int | None = None) -> None:
        if self.socket is not None and not self.socket.closed:
            self.socket.send_datagram(data, address, ttl=ttl)

    def release(self) -> None:
        self.on_probe = None
        self.on_udx = None
        self._released.set()

    def _on_message(self, data: bytes, address: Address) -> None:
        if len(data) == 1:
            handler = self.on_probe
            if handler is not None:
                handler(self, address)
            return
        if is_udx(data):
            udx = self.on_udx
            if udx is not None:
                udx(self, data, address)
            return
        self._pool.host.foreign_response(data, address)


class SocketPool:
    """Opens and closes pooled sockets on the node's task group."""

    def __init__(self, host: PoolHost, bind_host: str) -> None:
        self.host = host
        self.bind_host = bind_host
        self.open = 0
        self.stats = {"opened": 0, "closed": 0, "refused": 0}

    async def acquire(self) -> PooledSocket:
        """A new socket, bound and receiving. Raises DHTError when the pool is full or the
        node is closing."""
        if self.open >= MAX_POOLED or self.host.closed:
            self.stats["refused"] += 1
            raise DHTError("no hole-punch socket available")
        ref = PooledSocket(self)
        ready = anyio.Event()
        self.open += 1

        async def run() -> None:
            try:
                async with open_udx_socket(self.bind_host, 0, on_message=ref._on_message) as socket:
                    ref.socket = socket
                    self.stats["opened"] += 1
                    ready.set()
                    await ref._released.wait()
                    stream = ref.keep_for
                    if stream is not None and not stream.closed:
                        await stream.wait_closed()
            except OSError:
                pass
            finally:
                self.open -= 1
                self.stats["closed"] += 1
                ready.set()

        self.host.start_task(run)
        with anyio.move_on_after(OPEN_TIMEOUT):
            await ready.wait()
        if ref.socket is None:
            ref.release()
            raise DHTError("a hole-punch socket did not open")
        return ref

    def release_all(self, refs: list[PooledSocket]) -> None:
        for ref in refs:
            with contextlib.suppress(Exception):
                ref.release()
