"""One UDP socket carrying many UDX streams and, beside them, any other datagrams.

A :class:`UDXSocket` owns one non-blocking UDP socket and three tasks: a reader (it waits
with ``anyio.wait_readable`` and then drains the socket, up to a batch per wake-up, like
``p2pswarm.dht.rpc``), a timer (the earliest deadline of any stream) and a writer that
only runs while the kernel's send buffer is full. Each datagram is routed by its first
bytes: UDX (``FF 01``, at least 20 bytes) whose receiver id names a live stream goes to that
stream; everything else, dht-rpc traffic, 1-byte hole-punch probes, UDX packets for unknown
ids, goes to the pluggable ``on_message`` handler, so a HyperDHT node can share the socket
as libudx sockets are shared. After a drain every stream that received something flushes
once, which also coalesces its acks to one per wake-up.

Works on asyncio and trio (anyio only). Loss can be injected on both directions with a
:class:`~p2pswarm.transports.udx.faults.Faults` hook, for tests.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import logging
import math
import secrets
import socket as _socket
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
from anyio.abc import TaskGroup

from p2pswarm.errors import UDXError, UDXPacketError
from p2pswarm.protocol.udx import decode_packet, is_udx, peek_stream_id
from p2pswarm.protocol.udx.packet import DATA, END, encode_header

from .batching import enable_gro, gso_runs, gso_supported, receive_gro, send_run
from .faults import Faults
from .stream import Address, UDXStream

__all__ = ("Address", "MessageHandler", "UDXSocket", "open_udx_socket")

logger = logging.getLogger(__name__)

#: Gets every datagram that is not for a live UDX stream, with its source.
MessageHandler = Callable[[bytes, Address], None]

_RECEIVE_BATCH = 512
_MAX_DATAGRAM = 65_535
_BUFFER_SIZE = 4 * 1024 * 1024
_BACKLOG_LIMIT = 8192
#: How long a cleanly closed stream still answers its peer's retransmitted END (the
#: peer's timer covers six RTOs; this covers the usual few), and how many such ids are kept.
_TOMBSTONE_TIME = 10.0
_TOMBSTONE_LIMIT = 4096
#: A GSO send refused with one of these means the path cannot segment (no checksum
#: offload, an old kernel): this socket sends one datagram per call from then on.
_NO_GSO = frozenset({errno.EIO, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOPROTOOPT, errno.EMSGSIZE})


class UDXSocket:
    """A bound UDP socket with its UDX streams. Make one with :func:`open_udx_socket`."""

    def __init__(
        self,
        raw: _socket.socket,
        task_group: TaskGroup,
        *,
        on_message: MessageHandler | None = None,
        faults: Faults | None = None,
    ) -> None:
        self._raw = raw
        self._tg = task_group
        self.on_message = on_message
        self.faults = faults
        self._streams: dict[int, UDXStream] = {}
        self._closed = False
        self._timer_wake = anyio.Event()
        self._timer_planned = math.inf
        self._backlog: deque[tuple[bytes, Address]] = deque()
        self._writer_wake = anyio.Event()
        self._dirty: set[UDXStream] = set()
        #: Datagrams the fault hook delays: (due, order, data, address), a heap.
        self._delayed: list[tuple[float, int, bytes, Address]] = []
        self._delay_order = itertools.count()
        self._delay_wake = anyio.Event()
        #: Closed streams' final acks: id -> (ack datagram, address, expiry).
        self._tombstones: dict[int, tuple[bytes, Address, float]] = {}
        host, port = raw.getsockname()[:2]
        self.local_address: Address = (str(host), int(port))
        #: Datagrams dropped: malformed UDX, no handler, a full send backlog.
        self.dropped = 0
        #: Whether sends batch with UDP GSO / receives with UDP GRO (:mod:`.batching`).
        self.gso = gso_supported()
        self.gro = enable_gro(raw)

    # -- public API ---------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def streams(self) -> tuple[UDXStream, ...]:
        return tuple(self._streams.values())

    def create_stream(
        self,
        local_id: int | None = None,
        *,
        keepalive: float | None = None,
        firewall: Callable[[UDXStream, Address], bool] | None = None,
        linger: float = 10.0,
    ) -> UDXStream:
        """A new stream registered under ``local_id`` (random when None): what the remote
        writes in its headers to reach it. Connect it with
        :meth:`~p2pswarm.transports.udx.stream.UDXStream.connect`.

        ``firewall(stream, address)`` runs for packets reaching the stream before it is
        connected; it may connect it (to adopt a punched path) and returns True to drop the
        packet, as libudx's ``on_firewall``. Without one, such packets are dropped.
        """
        if self._closed:
            raise UDXError("the UDX socket is closed")
        if local_id is None:
            local_id = secrets.randbits(32)
            while local_id in self._streams or local_id in self._tombstones:
                local_id = secrets.randbits(32)
        elif local_id in self._streams:
            raise UDXError(f"stream id {local_id} is already in use on this socket")
        self._tombstones.pop(local_id, None)
        stream = UDXStream(self, local_id, keepalive=keepalive, firewall=firewall, linger=linger)
        self._streams[local_id] = stream
        return stream

    def send_datagram(self, data: bytes, address: Address, *, ttl: int | None = None) -> None:
        """Send a raw datagram (dht-rpc, a probe) from this socket; ``ttl``: with that IP
        TTL (a hole puncher's low-TTL probe opens our NAT without reaching the peer's)."""
        if ttl is None:
            self._send(data, address)
            return
        with contextlib.suppress(OSError):
            self._raw.setsockopt(_socket.IPPROTO_IP, _socket.IP_TTL, ttl)
        try:
            self._send(data, address)
        finally:
            with contextlib.suppress(OSError):
                self._raw.setsockopt(_socket.IPPROTO_IP, _socket.IP_TTL, 64)

    def deliver(self, data: bytes, address: Address) -> None:
        """Handle ``data`` as if it had just arrived from ``address`` (a packet that came
        in before its stream moved onto this socket, handed over instead of lost)."""
        if self._closed:
            return
        now = anyio.current_time()
        self._dispatch(data, address, now, self._streams)
        while self._dirty:
            self._dirty.pop()._flush(now)

    # -- internals used by the streams --------------------------------------------------

    def _now(self) -> float:
        return anyio.current_time()

    def _unregister(self, stream: UDXStream) -> None:
        if self._streams.get(stream.id) is not stream:
            return
        del self._streams[stream.id]
        machine = stream._machine
        address = stream.remote_address
        if machine.closed and machine.error is None and machine.eof and address is not None:
            # TIME-WAIT, as TCP: if our last ack of the peer's END was lost, the peer resends
            # its END; answer with the same ack instead of letting it time out.
            if len(self._tombstones) >= _TOMBSTONE_LIMIT:
                del self._tombstones[next(iter(self._tombstones))]
            final = encode_header(
                0, machine.remote_id, machine.recv.rwnd(), machine.seq, machine.recv.ack
            )
            self._tombstones[stream.id] = (final, address, self._now() + _TOMBSTONE_TIME)

    def _register(self, stream: UDXStream) -> None:
        other = self._streams.get(stream.id)
        if other is not None and other is not stream:
            raise UDXError(f"stream id {stream.id} is already in use on this socket")
        self._streams[stream.id] = stream

    def _schedule(self, deadline: float | None) -> None:
        if deadline is not None and deadline < self._timer_planned:
            self._timer_planned = deadline
            self._timer_wake.set()

    def _send(self, data: bytes, address: Address) -> None:
        if self._closed:
            return
        faults = self.faults
        if faults is not None:
            for datagram in faults.outgoing(data):
                if faults.delays:
                    due = self._now() + faults.latency()
                    heapq.heappush(self._delayed, (due, next(self._delay_order), datagram, address))
                    self._delay_wake.set()
                else:
                    self._send_now(datagram, address)
            return
        self._send_now(data, address)

    def _send_many(self, datagrams: list[bytes], address: Address) -> None:
        """A stream's datagrams for one address, in order: GSO runs where it can."""
        if len(datagrams) == 1 or not self.gso or self.faults is not None or self._backlog:
            for datagram in datagrams:
                self._send(datagram, address)
            return
        if self._closed:
            return
        raw = self._raw
        runs = list(gso_runs(datagrams))
        for index, run in enumerate(runs):
            try:
                send_run(raw, run, address)
            except (BlockingIOError, InterruptedError):
                for rest in runs[index:]:
                    self._backlog.extend((datagram, address) for datagram in rest)
                self._writer_wake.set()
                return
            except OSError as exc:
                if len(run) > 1 and exc.errno in _NO_GSO:
                    logger.debug("UDP GSO refused (%s); one datagram per send from now on", exc)
                    self.gso = False
                    for rest in runs[index:]:
                        for datagram in rest:
                            self._send_now(datagram, address)
                    return
                logger.debug("send to %s failed: %s", address, exc)

    def _send_now(self, data: bytes, address: Address) -> None:
        if self._backlog:
            if len(self._backlog) >= _BACKLOG_LIMIT:
                self.dropped += 1
                return
            self._backlog.append((data, address))
            return
        try:
            self._raw.sendto(data, address)
        except (BlockingIOError, InterruptedError):
            self._backlog.append((data, address))
            self._writer_wake.set()
        except OSError as exc:  # unreachable, too big: UDP is lossy, retransmits cover it
            logger.debug("send to %s failed: %s", address, exc)

    # -- tasks --------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        raw = self._raw
        streams = self._streams
        dirty = self._dirty
        while not self._closed:
            try:
                await anyio.wait_readable(raw)
            except (anyio.ClosedResourceError, OSError, ValueError):
                return
            now = anyio.current_time()
            gro = self.gro
            for _ in range(_RECEIVE_BATCH):
                try:
                    if gro:
                        received, address = receive_gro(raw, _MAX_DATAGRAM)
                    else:
                        data, source = raw.recvfrom(_MAX_DATAGRAM)
                        received, address = [data], (str(source[0]), int(source[1]))
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:  # an ICMP error surfaced on some platforms
                    if self._closed:
                        return
                    logger.debug("receive error: %s", exc)
                    break
                faults = self.faults
                for data in received:
                    if faults is not None:
                        for datagram in faults.incoming(data):
                            self._dispatch(datagram, address, now, streams)
                    else:
                        self._dispatch(data, address, now, streams)
            while dirty:
                dirty.pop()._flush(now)

    def _dispatch(
        self, data: bytes, address: Address, now: float, streams: dict[int, UDXStream]
    ) -> None:
        if is_udx(data):
            stream = streams.get(peek_stream_id(data))
            if stream is not None:
                if stream._relay_to is not None:  # forwarded verbatim (libudx relay_to)
                    stream._relay(data, address)
                    return
                try:
                    packet = decode_packet(data)
                except UDXPacketError as exc:
                    self.dropped += 1
                    logger.debug("dropped a malformed UDX packet from %s: %s", address, exc)
                    return
                if stream._on_packet(packet, address, now):
                    self._dirty.add(stream)
                return
            if self._tombstones and self._answer_tombstone(data, now):
                return
        handler = self.on_message
        if handler is None:
            self.dropped += 1
            return
        try:
            handler(data, address)
        except Exception:
            self.dropped += 1
            logger.debug("the message handler failed on a datagram from %s", address, exc_info=True)

    def _answer_tombstone(self, data: bytes, now: float) -> bool:
        stream_id = peek_stream_id(data)
        entry = self._tombstones.get(stream_id)
        if entry is None:
            return False
        final, address, expiry = entry
        if now > expiry:
            del self._tombstones[stream_id]
            return False
        if data[2] & (DATA | END):
            self._send(final, address)
        return True

    async def _timer_loop(self) -> None:
        while not self._closed:
            now = anyio.current_time()
            earliest = math.inf
            for stream in list(self._streams.values()):
                deadline = stream._machine.next_timeout()
                if deadline is None:
                    continue
                if deadline <= now:
                    stream._machine.handle_timeout(now)
                    stream._flush(now)
                    deadline = stream._machine.next_timeout()
                    if deadline is None:
                        continue
                earliest = min(earliest, deadline)
            self._timer_planned = earliest
            self._timer_wake = anyio.Event()
            delay = max(earliest - anyio.current_time(), 0.0)
            with anyio.move_on_after(delay):
                await self._timer_wake.wait()

    async def _delay_loop(self) -> None:
        """Sends what the fault hook delayed, each when it is due (idle without a hook)."""
        delayed = self._delayed
        while not self._closed:
            now = anyio.current_time()
            while delayed and delayed[0][0] <= now:
                _, _, data, address = heapq.heappop(delayed)
                self._send_now(data, address)
            self._delay_wake = anyio.Event()
            if not delayed:
                await self._delay_wake.wait()
                continue
            with anyio.move_on_after(max(delayed[0][0] - anyio.current_time(), 0.0)):
                await self._delay_wake.wait()

    async def _write_loop(self) -> None:
        raw = self._raw
        while not self._closed:
            await self._writer_wake.wait()
            self._writer_wake = anyio.Event()
            while self._backlog and not self._closed:
                try:
                    await anyio.wait_writable(raw)
                except (anyio.ClosedResourceError, OSError, ValueError):
                    return
                while self._backlog:
                    data, address = self._backlog[0]
                    try:
                        raw.sendto(data, address)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as exc:
                        logger.debug("send to %s failed: %s", address, exc)
                    self._backlog.popleft()

    def _close(self) -> None:
        if self._closed:
            return
        for stream in list(self._streams.values()):
            stream.destroy()
        self._closed = True
        self._streams.clear()
        self._timer_wake.set()
        self._writer_wake.set()
        self._delay_wake.set()
        anyio.notify_closing(self._raw)
        self._raw.close()


@asynccontextmanager
async def open_udx_socket(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    on_message: MessageHandler | None = None,
    faults: Faults | None = None,
) -> AsyncIterator[UDXSocket]:
    """Bind a UDP socket for UDX on ``host:port`` (IPv4) and serve it until the block ends;
    then every stream still open is destroyed (one DESTROY each) and the socket closed."""
    raw = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        raw.setblocking(False)
        for option in (_socket.SO_RCVBUF, _socket.SO_SNDBUF):
            with contextlib.suppress(OSError):  # a kernel that refuses the size keeps its own
                raw.setsockopt(_socket.SOL_SOCKET, option, _BUFFER_SIZE)
        raw.bind((host, port))
    except BaseException:
        raw.close()
        raise
    async with anyio.create_task_group() as tg:
        udx = UDXSocket(raw, tg, on_message=on_message, faults=faults)
        tg.start_soon(udx._receive_loop)
        tg.start_soon(udx._timer_loop)
        tg.start_soon(udx._write_loop)
        if faults is not None:
            tg.start_soon(udx._delay_loop)
        try:
            yield udx
        finally:
            udx._close()
            tg.cancel_scope.cancel()
