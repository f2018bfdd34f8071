"""The thin I/O edge: one non-blocking UDP socket feeding ``datagram_received(data, addr)``.

Like our own DHT's socket, it is driven through anyio's readiness primitives
(``anyio.wait_readable`` / ``notify_closing``), so it runs on asyncio and trio alike; the
receive loop wakes once per burst and drains every queued datagram with plain
``recvfrom`` calls, so the kernel's buffer is the only queue. ``send`` is a non-blocking
``sendto`` that never raises (a full buffer or an ICMP error is a lost datagram).

A node does not need this class: anything that calls ``node.datagram_received`` and gives
the node a ``send`` callable (a UDX socket that demultiplexes dht-rpc datagrams from its
stream packets) can carry it instead.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Final

import anyio

from ..protocol.dht_rpc import MAX_DATAGRAM_SIZE

__all__ = ("RECEIVE_BATCH", "UDPEndpoint")

logger = logging.getLogger(__name__)

Address = tuple[str, int]
#: Datagrams handled per wake-up before yielding to other tasks (fairness under a flood).
RECEIVE_BATCH: Final = 64


class UDPEndpoint:
    """An IPv4 UDP socket bound to (host, port) (port ``0``: any free port)."""

    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self._on_datagram = on_datagram
        self._raw: socket.socket | None = None
        self.address: Address | None = None
        self.closed = False
        #: Datagrams whose handler raised (a bug, not bad input): counted and dropped.
        self.handler_errors = 0

    def bind(self, host: str, port: int, *, any_port: bool = True) -> Address:
        """Bind; if ``port`` is taken and ``any_port``, try the next 5, then any port."""
        candidates = [port] if port == 0 else [*range(port, port + 6), 0]
        if not any_port:
            candidates = [port]
        last: OSError | None = None
        for candidate in candidates:
            raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                raw.setblocking(False)
                raw.bind((host, candidate))
            except OSError as exc:
                raw.close()
                last = exc
                continue
            self._raw = raw
            local = raw.getsockname()
            self.address = (str(local[0]), int(local[1]))
            return self.address
        assert last is not None
        raise last

    def send(self, data: bytes, address: Address) -> None:
        raw = self._raw
        if raw is None or self.closed:
            return
        try:
            raw.sendto(data, address)
        except OSError as exc:
            logger.debug("send to %s failed: %s", address, exc)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._raw is not None:
            anyio.notify_closing(self._raw)
            self._raw.close()

    async def receive_loop(self) -> None:
        """Deliver datagrams until :meth:`close`; never raises because of what arrives."""
        raw = self._raw
        assert raw is not None, "bind first"
        while not self.closed:
            try:
                await anyio.wait_readable(raw)
            except (anyio.ClosedResourceError, OSError, ValueError):
                return
            for _ in range(RECEIVE_BATCH):
                try:
                    data, source = raw.recvfrom(MAX_DATAGRAM_SIZE + 1)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    if self.closed:
                        return
                    logger.debug("receive error: %s", exc)
                    break
                try:
                    self._on_datagram(data, (str(source[0]), int(source[1])))
                except Exception:
                    self.handler_errors += 1
                    logger.exception("dropped a datagram from %s", source)
