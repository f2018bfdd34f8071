"""A lean TCP byte stream for the asyncio backend: one protocol, one waiter, no per-call scopes.

anyio's asyncio ``SocketStream`` pays, on every small message, for an ``asyncio.Event`` per
read, a pause/resume of reading around each ``receive()`` (two ``epoll_ctl`` calls) and a
shielded cancel scope with an extra trip round the event loop after each ``send()``: about
40 % of a Connection's 64-byte round trip in one process (``bench/throughput.py``: 108 us
with it, 63 us with this stream on a loaded 2-core machine). This stream keeps the same
contract (an ``anyio.abc.SocketStream``, the same exceptions, the same typed attributes)
at the cost of a future only when it really has to wait.

Semantics, all as anyio's asyncio stream unless noted:

* ``receive()`` returns buffered bytes at once, without a trip round the loop (as
  asyncio's own ``StreamReader`` does), but every 16th call in a row that did not have to
  wait yields once, and so does ``send()``: a busy stream cannot starve the loop.
  Reading stays on until ``read_high_water`` bytes are buffered and resumes once the
  reader has taken all but a quarter of that, so a slow reader holds bounded memory and
  the peer is stopped by TCP. A cancelled ``receive()`` loses nothing: bytes only leave
  the buffer when returned.
* ``send()`` hands the whole item to the transport before anything can interrupt it, then
  returns once the kernel has taken every byte (write-buffer limit 0, as anyio), so
  back-pressure is the kernel's. A cancelled ``send()`` has still queued all its bytes;
  they go out unless the stream is closed. It waits when the kernel was full, and
  otherwise only for the fairness yield above.
* ``send_eof()`` half-closes after what is queued; the peer's half-close is
  ``anyio.EndOfStream`` once its data was read, and this side can go on sending.
* ``aclose()`` aborts the transport (queued but unsent bytes are dropped, as anyio's).
  Pending calls raise ``anyio.ClosedResourceError``; a reset or failed socket gives
  ``anyio.BrokenResourceError``.

:func:`running_on_asyncio` tells callers when this stream applies; on any other backend
they keep anyio's streams.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import socket
import weakref
from collections import deque
from typing import Any, Final, cast

import anyio
import anyio.lowlevel
from anyio.abc import SocketListener, SocketStream

__all__ = (
    "DEFAULT_READ_HIGH_WATER",
    "AsyncioSocketListener",
    "AsyncioSocketStream",
    "connect",
    "running_on_asyncio",
    "wrap_socket",
)

#: The most one socket read takes in (asyncio's own transports read 256 KiB at a time).
_READ_SIZE: Final = 256 * 1024
#: Bytes read ahead of the application before reading pauses.
DEFAULT_READ_HIGH_WATER: Final = 1024 * 1024
#: Calls in a row that may complete without suspending before one yields to the loop:
#: a writer whose peer keeps up (so the kernel never fills), or a reader with plenty
#: buffered, must not starve the other tasks (keep-alives, other connections, the DHT).
_FAIR_STREAK: Final = 16


def running_on_asyncio() -> bool:
    """True inside an asyncio event loop run by anyio (its cancellation is asyncio's)."""
    try:
        return anyio.get_cancelled_exc_class() is asyncio.CancelledError
    except RuntimeError:
        return False


def _read_buffer(loop: asyncio.AbstractEventLoop) -> memoryview:
    """The loop's one scratch buffer that every stream's socket reads land in.

    The transport calls ``get_buffer``, reads into it and calls ``buffer_updated`` in one
    go, and the bytes are copied out there, so one buffer serves all streams on a loop.
    Reading into it instead of letting the transport allocate 256 KiB per read (and shrink
    it) matters: glibc serves such sizes with ``mmap`` until a large block is ``free``d, and
    a shrunken one never is, so a process that only ever exchanged small messages paid an
    mmap, page faults and a munmap per read (measured: 37 against 64 us per round trip,
    depending only on what the process had allocated before).
    """
    view = _READ_BUFFERS.get(loop)
    if view is None:
        view = _READ_BUFFERS[loop] = memoryview(bytearray(_READ_SIZE))
    return view


#: Scratch read buffers by event loop (see :func:`_read_buffer`).
_READ_BUFFERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, memoryview] = (
    weakref.WeakKeyDictionary()
)


class _Protocol(asyncio.BufferedProtocol):
    """Buffers what the transport reads and wakes the one waiting reader or writer."""

    def __init__(self, read_high_water: int) -> None:
        self.read_buffer = _read_buffer(asyncio.get_running_loop())
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        #: Bytes in ``chunks`` not yet returned (the first chunk may be partly taken).
        self.buffered = 0
        self.read_high_water = read_high_water
        self.read_paused = False
        self.write_paused = False
        self.eof = False
        self.lost = False
        self.exception: BaseException | None = None
        self.read_waiter: asyncio.Future[None] | None = None
        self.write_waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A selector loop's transport, or uvloop's (not registered as asyncio.Transport).
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(0)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._received(self.read_buffer[:nbytes].tobytes())

    def _received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered >= self.read_high_water and not self.read_paused:
            assert self.transport is not None
            self.read_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return True  # keep the transport open: we may still send (half-close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if exc is not None:
            self.exception = exc
        self._wake_reader()
        self.write_paused = False
        self._wake_writer()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_writer()

    def _wake_reader(self) -> None:
        waiter = self.read_waiter
        if waiter is not None:
            self.read_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _wake_writer(self) -> None:
        waiter = self.write_waiter
        if waiter is not None:
            self.write_waiter = None
            if not waiter.done():
                waiter.set_result(None)


class AsyncioSocketStream(SocketStream):
    """A connected TCP socket on an asyncio transport (see the module docstring)."""

    def __init__(self, sock: socket.socket, transport: asyncio.Transport, protocol: _Protocol):
        self._socket = sock
        self._transport = transport
        self._protocol = protocol
        self._loop = asyncio.get_running_loop()
        #: How much of ``protocol.chunks[0]`` was already returned.
        self._offset = 0
        self._receiving = False
        self._sending = False
        self._closed = False
        self._eof_sent = False
        #: Calls in a row that returned without suspending (see ``_FAIR_STREAK``).
        self._streak = 0
        #: One deadline timer kept across reads: deadlines mostly move later (an idle
        #: clock refreshed per message), so re-arming a timer per read would be waste.
        #: It fires at ``_timer_when`` and then re-checks the current read's deadline.
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = math.inf
        self._read_deadline = math.inf
        self._read_expired = False

    @property
    def _raw_socket(self) -> socket.socket:
        return self._socket

    async def receive(self, max_bytes: int = 65536) -> bytes:
        chunk = await self.receive_before(math.inf, max_bytes)
        assert chunk is not None
        return chunk

    async def receive_before(self, deadline: float, max_bytes: int = 65536) -> bytes | None:
        """As :meth:`receive`, but None when the event loop's clock reaches ``deadline``
        (``loop.time()``) before anything arrives: a timed read without a cancel scope."""
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        if self._receiving:
            raise anyio.BusyResourceError("reading from")
        if self._closed:
            raise anyio.ClosedResourceError
        protocol = self._protocol
        chunks = protocol.chunks
        if not chunks:
            self._receiving = True
            try:
                if not await self._wait_readable(deadline):
                    return None
            finally:
                self._receiving = False
            self._streak = 0
        elif self._streak >= _FAIR_STREAK:
            self._receiving = True
            try:
                await self._let_others_run()  # a cancellation here takes nothing
            finally:
                self._receiving = False
            if self._closed:
                raise anyio.ClosedResourceError
        else:
            self._streak += 1
        return self._take(max_bytes)

    async def _let_others_run(self) -> None:
        self._streak = 0
        await asyncio.sleep(0)

    async def _wait_readable(self, deadline: float) -> bool:
        """Wait until bytes are buffered (True) or ``deadline`` passed (False); raise at
        the end of the stream."""
        protocol = self._protocol
        chunks = protocol.chunks
        self._read_expired = False
        while not chunks:
            if self._closed:
                raise anyio.ClosedResourceError
            if protocol.exception is not None:
                raise anyio.BrokenResourceError from protocol.exception
            if protocol.eof or protocol.lost:
                raise anyio.EndOfStream
            if self._read_expired:
                return False
            waiter = self._loop.create_future()
            protocol.read_waiter = waiter
            self._read_deadline = deadline
            if deadline < self._timer_when:
                self._arm_timer(deadline)
            try:
                await waiter
            finally:
                protocol.read_waiter = None
                self._read_deadline = math.inf
        if self._closed:
            raise anyio.ClosedResourceError
        return True

    def _arm_timer(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._on_timer)
        self._timer_when = when

    def _on_timer(self) -> None:
        fired_at = self._timer_when
        self._timer = None
        self._timer_when = math.inf
        deadline = self._read_deadline
        if deadline == math.inf:
            return  # no read waits: the next timed read arms it again
        if deadline <= fired_at:
            self._read_expired = True
            waiter = self._protocol.read_waiter
            if waiter is not None:
                _set_done(waiter)
        else:
            self._arm_timer(deadline)  # the read waiting now has a later deadline

    def _take(self, max_bytes: int) -> bytes:
        protocol = self._protocol
        chunks = protocol.chunks
        chunk = chunks[0]
        offset = self._offset
        if offset == 0 and len(chunk) <= max_bytes:
            chunks.popleft()
        else:
            # Copy only what is returned, never the rest of a large chunk.
            end = offset + max_bytes
            if end >= len(chunk):
                chunks.popleft()
                self._offset = 0
            else:
                self._offset = end
            chunk = chunk[offset:end]
        protocol.buffered -= len(chunk)
        if protocol.read_paused and protocol.buffered <= protocol.read_high_water >> 2:
            protocol.read_paused = False
            if not protocol.lost:
                self._transport.resume_reading()
        return chunk

    async def send(self, item: bytes) -> None:
        if self._sending:
            raise anyio.BusyResourceError("writing to")
        self._check_writable()
        protocol = self._protocol
        try:
            self._transport.write(item)
        except RuntimeError as exc:  # the transport closed under us
            raise anyio.BrokenResourceError from exc
        if protocol.write_paused:
            self._sending = True
            try:
                while protocol.write_paused:
                    waiter = self._loop.create_future()
                    protocol.write_waiter = waiter
                    try:
                        await waiter
                    finally:
                        protocol.write_waiter = None
            finally:
                self._sending = False
            self._streak = 0
            self._check_writable()
        elif self._streak >= _FAIR_STREAK:
            self._sending = True
            try:
                await self._let_others_run()  # the bytes are queued whatever happens here
            finally:
                self._sending = False
        else:
            self._streak += 1

    def _check_writable(self) -> None:
        if self._closed or self._eof_sent:
            raise anyio.ClosedResourceError
        protocol = self._protocol
        if protocol.lost or self._transport.is_closing():
            if protocol.exception is not None:
                raise anyio.BrokenResourceError from protocol.exception
            raise anyio.BrokenResourceError

    async def send_eof(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        if self._eof_sent:
            return
        self._eof_sent = True
        try:
            if not self._transport.is_closing():
                self._transport.write_eof()
        except OSError:
            pass

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._protocol.chunks.clear()
            self._protocol.buffered = 0
            self._transport.abort()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
                self._timer_when = math.inf
            self._protocol._wake_reader()
            self._protocol._wake_writer()
        await anyio.lowlevel.checkpoint()


async def wrap_socket(
    sock: socket.socket, *, read_high_water: int = DEFAULT_READ_HIGH_WATER
) -> AsyncioSocketStream:
    """Put a connected TCP socket on the running asyncio loop (it takes ownership)."""
    if read_high_water < 1:
        raise ValueError("read_high_water must be positive")
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    protocol = _Protocol(read_high_water)
    transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock)
    return AsyncioSocketStream(sock, transport, protocol)


async def connect(
    host: str, port: int, *, read_high_water: int = DEFAULT_READ_HIGH_WATER
) -> AsyncioSocketStream:
    """Connect over TCP, trying each resolved address in turn, like ``anyio.connect_tcp``
    without its staggered (happy eyeballs) attempts.

    :raises OSError: no address could be connected (the last error, or a resolution error)
    """
    loop = asyncio.get_running_loop()
    infos = _literal_address(host, port)
    if infos is None:  # a name: resolve it (in a worker thread)
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except BaseException as exc:
            sock.close()
            if isinstance(exc, OSError):
                error = exc
                continue
            raise
        try:
            return await wrap_socket(sock, read_high_water=read_high_water)
        except BaseException:
            sock.close()
            raise
    raise error if error is not None else OSError(f"no address found for {host}:{port}")


def _literal_address(
    host: str, port: int
) -> list[tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]] | None:
    """getaddrinfo's answer for an IP address literal, without its trip to a worker thread
    (as ``anyio.connect_tcp`` skips it too); None for a name."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.version == 6:
        return [(socket.AF_INET6, socket.SOCK_STREAM, 0, "", (host, port, 0, 0))]
    return [(socket.AF_INET, socket.SOCK_STREAM, 0, "", (host, port))]


class AsyncioSocketListener(SocketListener):
    """Accepts from a listening socket straight into :class:`AsyncioSocketStream`.

    It takes over an anyio ``SocketListener`` (which bound the socket, with its options)
    and closes it on :meth:`aclose`.
    """

    def __init__(
        self, listener: SocketListener, *, read_high_water: int = DEFAULT_READ_HIGH_WATER
    ) -> None:
        self._inner = listener
        self._socket: socket.socket = listener.extra(anyio.abc.SocketAttribute.raw_socket)
        self._socket.setblocking(False)
        self._read_high_water = read_high_water
        self._waiter: asyncio.Future[None] | None = None
        self._accepting = False
        self._closed = False

    @property
    def _raw_socket(self) -> socket.socket:
        return self._socket

    async def accept(self) -> AsyncioSocketStream:
        if self._closed:
            raise anyio.ClosedResourceError
        if self._accepting:
            raise anyio.BusyResourceError("accepting connections from")
        loop = asyncio.get_running_loop()
        self._accepting = True
        try:
            while True:
                try:
                    client, _ = self._socket.accept()
                    break
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    pass
                waiter = loop.create_future()
                self._waiter = waiter
                loop.add_reader(self._socket, _set_done, waiter)
                try:
                    await waiter
                finally:
                    self._waiter = None
                    if not self._closed:
                        loop.remove_reader(self._socket)
                if self._closed:
                    raise anyio.ClosedResourceError
        finally:
            self._accepting = False
        try:
            return await wrap_socket(client, read_high_water=self._read_high_water)
        except BaseException:
            client.close()
            raise

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        waiter = self._waiter
        if waiter is not None:
            asyncio.get_running_loop().remove_reader(self._socket)
            _set_done(waiter)
        await self._inner.aclose()


def _set_done(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
