"""Connection: an encrypted, authenticated ``anyio.abc.ByteStream`` to one peer.

It drives a :class:`~p2pswarm.protocol.SecretStream` over a transport byte stream (a TCP
socket today) in a pull model: bytes are read from the socket inside
:meth:`Connection.receive`, back-pressure is the kernel's, and an application that stops
reading stops the peer. No task of its own is started.

Noticing a gone peer without a reader. An owner that runs :meth:`Connection.run_keepalive`
beside the application (the swarm and a listener's ``serve`` do) gets a watchdog that
reads for the application whenever no ``receive()`` is under way: decrypted bytes wait,
at most :data:`READ_AHEAD` of them (then it stops, and the peer is held back), so a
handler that only awaits :meth:`Connection.wait_closed` still sees the connection close
when the peer resets it, closes it or goes silent. A peer's end of stream closes the
connection once this side ended too, or when keep-alive probes show the peer's socket
is gone; a peer that only half-closed keeps it. Data received before a close stays
readable. The first ``receive()`` after the watchdog started a read waits for that read
(one task switch); reads in a row go straight to the socket.

Liveness, both directions:

* Keep-alives. While ``receive()`` waits, it sends an (encrypted, empty) keep-alive
  whenever nothing was sent for ``keepalive`` seconds. An owner that is not always
  receiving (a listener's ``serve``, the swarm) also runs :meth:`Connection.run_keepalive`
  in a task beside the handler.
* Idle timeout. ``receive()`` raises :class:`~p2pswarm.errors.IdleTimeoutError` and closes
  the connection when nothing at all (not even a keep-alive) arrived for ``idle_timeout``
  seconds: 20 s by default, four missed keep-alives of a peer on the 5 s default. It is
  measured while receiving, by ``receive()`` or by the watchdog below; a connection
  nobody reads and nobody watches is not timed out (its peer's data would just wait in
  the kernel).
* Cost. Without a ``run_keepalive()`` task, ``receive()`` keeps these clocks itself: on
  a :class:`DeadlineReceiveStream` (the lean asyncio socket stream of
  :mod:`p2pswarm.transports.tcp` on asyncio) with a deadline on the read, elsewhere with
  a cancel scope around each socket read. While such
  a task runs, it keeps them instead (and wakes a waiting ``receive()`` by closing the
  connection on an idle timeout), and reads go without either: measurably less latency
  per message.

Faults: a protocol violation or an idle timeout is raised once by ``receive()``, after
everything decoded before it has been returned, and the connection is closed at that
moment; later calls (and sends) raise ``anyio.BrokenResourceError``, as they do after the
socket itself failed. ``anyio.ClosedResourceError`` is kept for use after :meth:`aclose`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol, runtime_checkable

import anyio
import anyio.lowlevel
from anyio.abc import ByteStream

from .errors import IdleTimeoutError, ProtocolError
from .protocol import Data, EndOfStream, Event, ProtocolViolation, SecretStream

__all__ = (
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_KEEPALIVE",
    "READ_AHEAD",
    "Connection",
    "ConnectionAttribute",
    "DeadlineReceiveStream",
    "HangupReportingStream",
)

#: Seconds without sending after which a keep-alive goes out (Hyperswarm's default).
DEFAULT_KEEPALIVE: Final = 5.0
#: Seconds without receiving anything after which the peer is taken as dead.
DEFAULT_IDLE_TIMEOUT: Final = 20.0


@runtime_checkable
class DeadlineReceiveStream(Protocol):
    """A transport stream that can wait for data until a deadline without a cancel scope.

    A Connection over such a stream keeps its keep-alive and idle clocks with the deadline
    instead of a cancel scope around each read (measurably cheaper per message). The
    deadline is on the clock of ``anyio.current_time()`` (the event loop's ``time()``);
    the result is None when it passed before anything arrived, else as ``receive``.
    """

    async def receive_before(self, deadline: float, max_bytes: int = 65536) -> bytes | None: ...


@runtime_checkable
class HangupReportingStream(Protocol):
    """A transport stream that reports the peer's end of stream or a lost connection by
    a callback, while nobody reads it: a watchdog parked between its timers learns of a
    hang-up at once (the lean asyncio socket stream of :mod:`p2pswarm.transports` is
    one). Elsewhere the watchdog finds it at its next read."""

    def set_hangup_callback(self, callback: Callable[[], None] | None) -> None: ...


def _event_loop_clock() -> Callable[[], float]:
    """``anyio.current_time``, or on asyncio the loop's own ``time`` it reads (cheaper)."""
    try:
        if anyio.get_cancelled_exc_class() is asyncio.CancelledError:
            return asyncio.get_running_loop().time
    except RuntimeError:
        pass
    return anyio.current_time


#: How much to ask the socket for at once: asyncio hands over what it has read, up to this.
_RECEIVE_SIZE: Final = 256 * 1024
#: Plaintext per transport write for large sends: bounds the ciphertext held at once.
_SEND_BATCH: Final = 256 * 1024
#: Decrypted bytes the watchdog reads ahead of an application that is not receiving;
#: past it, it stops reading and the peer is held back by the transport's own window.
READ_AHEAD: Final = 128 * 1024
#: Who is reading the transport stream (see ``Connection._reader``).
_NOBODY: Final = 0
_APPLICATION: Final = 1
_WATCHDOG: Final = 2
#: Seconds after which the watchdog looks again whether the application stopped reading.
_RECHECK: Final = 5.0
#: Seconds after the first keep-alive that probes a peer which ended its side at which the
#: watchdog probes again: the reset of a gone host must be back by then, which takes a
#: round trip, so a few growing delays serve a LAN at once and a slow path soon after.
_REPROBES: Final = (0.05, 0.25, 1.0)


class ConnectionAttribute(anyio.TypedAttributeSet):
    """Typed attributes of a :class:`Connection` (``connection.extra(ConnectionAttribute.x)``)."""

    #: The peer's 32-byte Ed25519 public key, authenticated by the handshake.
    remote_public_key: bytes = anyio.typed_attribute()
    #: This side's 32-byte public key.
    public_key: bytes = anyio.typed_attribute()
    #: The 64-byte Noise handshake hash, the same on both sides: a channel binding.
    handshake_hash: bytes = anyio.typed_attribute()
    #: True on the side that dialled.
    is_initiator: bool = anyio.typed_attribute()
    #: The peer's (host, port) as this side's socket sees it.
    remote_address: tuple[str, int] = anyio.typed_attribute()
    #: Topics the initiator said it found the responder under (empty from JS peers).
    remote_topics: tuple[bytes, ...] = anyio.typed_attribute()
    #: True when the bytes travel through a relay (never, today).
    relayed: bool = anyio.typed_attribute()


class Connection(ByteStream):
    """An open secret stream to one authenticated peer.

    Made by :func:`~p2pswarm.connect_tcp`, a listener, or the lower-level
    :func:`~p2pswarm.transports._handshake.initiate_handshake` / ``accept_handshake``; not directly.
    """

    def __init__(
        self,
        transport_stream: ByteStream,
        machine: SecretStream,
        *,
        remote_address: tuple[str, int],
        initial_events: list[Event] | tuple[Event, ...] = (),
        keepalive: float | None = DEFAULT_KEEPALIVE,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        relayed: bool = False,
    ) -> None:
        if not machine.handshake_complete:
            raise ValueError("a Connection needs a secret stream whose handshake completed")
        if keepalive is not None and not keepalive > 0:
            raise ValueError("keepalive must be a positive number of seconds or None")
        if idle_timeout is not None and not idle_timeout > 0:
            raise ValueError("idle_timeout must be a positive number of seconds or None")
        assert machine.remote_public_key is not None and machine.handshake_hash is not None
        self._stream = transport_stream
        self._machine = machine
        self._remote_public_key: bytes = machine.remote_public_key
        self._handshake_hash: bytes = machine.handshake_hash
        self._remote_address = remote_address
        self._relayed = relayed
        self.keepalive = keepalive
        self.idle_timeout = idle_timeout
        self._pending: deque[bytes] = deque()
        #: How much of ``_pending[0]`` was already returned.
        self._pending_offset = 0
        #: Bytes in ``_pending`` not yet returned: what bounds the watchdog's read-ahead.
        self._pending_size = 0
        self._ended = False
        self._error: BaseException | None = None
        self._closed = False
        #: Closed by aclose(): what was buffered is dropped, and receive() says "closed".
        self._aclosed = False
        #: Closed by a fault (remote error, idle timeout, failed socket), not by aclose().
        self._broken = False
        self._eof_sent = False
        #: How many run_keepalive() tasks watch the clocks, and whether a receive() waits.
        self._watchdogs = 0
        self._waiting = False
        #: Who is inside a socket read: _NOBODY, _APPLICATION (receive()) or _WATCHDOG.
        self._reader = _NOBODY
        #: Set when the watchdog's read ends, for a receive() that waits for it.
        self._handover: anyio.Event | None = None
        #: What a parked watchdog waits on (set at a close or the peer's hang-up).
        self._wake: anyio.Event | None = None
        #: Whether a peer that ended its side was probed, when the watchdog's next probe
        #: is due (inf: none is), and how many of ``_REPROBES`` are spent.
        self._probed = False
        self._probe_at = math.inf
        self._probe_count = 0
        self._probed_at = 0.0
        self._closed_event = anyio.Event()
        #: Send turns (a FIFO lock without the cost of one when uncontended): frames of
        #: concurrent sends must not interleave, and their nonces must go out in order.
        self._sending = False
        self._send_waiters: deque[anyio.Event] = deque()
        self._receive_guard = anyio.ResourceGuard("reading from")
        #: A stream that reads with a deadline of its own, without a cancel scope.
        self._timed_stream = (
            transport_stream if isinstance(transport_stream, DeadlineReceiveStream) else None
        )
        #: The event loop's clock, as ``anyio.current_time`` reads it but without its lookup
        #: of the running backend, which costs more than the rest of a small message.
        #: Reports hang-ups to a parked watchdog (see run_keepalive).
        self._hangup_stream = (
            transport_stream if isinstance(transport_stream, HangupReportingStream) else None
        )
        self._clock: Callable[[], float] = _event_loop_clock()
        now = self._clock()
        self._last_sent = now
        self._last_received = now
        #: When receive()'s last socket read ended (see _receive_more).
        self._read_ended = now
        self._on_events(initial_events)

    # -- identity ---------------------------------------------------------------------------

    @property
    def remote_public_key(self) -> bytes:
        """The peer's 32-byte public key, authenticated by the handshake."""
        return self._remote_public_key

    @property
    def public_key(self) -> bytes:
        """This side's 32-byte public key."""
        return self._machine.public_key

    @property
    def handshake_hash(self) -> bytes:
        """The 64-byte handshake hash, equal on both ends."""
        return self._handshake_hash

    @property
    def is_initiator(self) -> bool:
        """True on the side that dialled."""
        return self._machine.is_initiator

    @property
    def remote_address(self) -> tuple[str, int]:
        """The peer's (host, port)."""
        return self._remote_address

    @property
    def remote_topics(self) -> tuple[bytes, ...]:
        """The topics from the initiator's hello (empty from a plain secret-stream peer)."""
        return self._machine.remote_topics

    @property
    def relayed(self) -> bool:
        """Whether the stream goes through a relay (False: every stream is direct today)."""
        return self._relayed

    @property
    def bytes_read(self) -> int:
        """Application bytes received since the handshake (keep-alives excluded)."""
        return self._machine.bytes_read

    @property
    def bytes_written(self) -> int:
        """Application bytes sent since the handshake (keep-alives excluded)."""
        return self._machine.bytes_written

    @property
    def closed(self) -> bool:
        """True once the connection is closed, for whatever reason."""
        return self._closed

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {
            **self._stream.extra_attributes,
            ConnectionAttribute.remote_public_key: lambda: self._remote_public_key,
            ConnectionAttribute.public_key: lambda: self._machine.public_key,
            ConnectionAttribute.handshake_hash: lambda: self._handshake_hash,
            ConnectionAttribute.is_initiator: lambda: self._machine.is_initiator,
            ConnectionAttribute.remote_address: lambda: self._remote_address,
            ConnectionAttribute.remote_topics: lambda: self._machine.remote_topics,
            ConnectionAttribute.relayed: lambda: self._relayed,
        }

    def __repr__(self) -> str:
        host, port = self._remote_address
        state = "closed" if self._closed else "open"
        role = "initiator" if self.is_initiator else "responder"
        return (
            f"<Connection {state} {role} remote={self._remote_public_key.hex()[:16]}… "
            f"at {host}:{port}>"
        )

    # -- receiving --------------------------------------------------------------------------

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Return the next decrypted bytes (at most ``max_bytes``, at least 1).

        :raises anyio.EndOfStream: the peer half-closed and everything was read
        :raises ~p2pswarm.errors.RemoteProtocolError: the peer broke the protocol (once)
        :raises ~p2pswarm.errors.IdleTimeoutError: nothing arrived in ``idle_timeout`` (once)
        :raises anyio.BrokenResourceError: the socket failed, or a fault was already raised
        :raises anyio.ClosedResourceError: the connection was closed with ``aclose()``
        :raises anyio.BusyResourceError: another task is already receiving
        """
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        with self._receive_guard:
            while True:
                if self._pending:
                    return self._take_pending(max_bytes)
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
                if self._ended and not self._aclosed:
                    raise anyio.EndOfStream
                if self._closed:
                    self._raise_closed()
                if self._reader == _WATCHDOG:
                    await self._wait_for_watchdog()
                else:
                    await self._receive_more()

    async def _wait_for_watchdog(self) -> None:
        """The watchdog is reading (nobody else was): wait for its chunk, and take the
        reading over from then on. Only the first receive() after a pause pays this."""
        handover = self._handover
        if handover is None:
            handover = self._handover = anyio.Event()
        self._waiting = True
        try:
            await handover.wait()
        finally:
            self._waiting = False

    async def receive_message(self) -> bytes:
        """Return the next whole message: exactly what the peer's one ``send_message()``
        (or JS ``stream.write()``) sent, never split or joined. Protocols that need message
        boundaries (protomux) read with this only; if a ``receive()`` took part of a message
        before, the rest of that message is returned. Raises what :meth:`receive` raises.
        """
        with self._receive_guard:
            while True:
                pending = self._pending
                if pending:
                    chunk = pending.popleft()
                    offset = self._pending_offset
                    if offset:
                        self._pending_offset = 0
                        chunk = chunk[offset:]
                    self._pending_size -= len(chunk)
                    return chunk
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
                if self._ended and not self._aclosed:
                    raise anyio.EndOfStream
                if self._closed:
                    self._raise_closed()
                if self._reader == _WATCHDOG:
                    await self._wait_for_watchdog()
                else:
                    await self._receive_more()

    def _take_pending(self, max_bytes: int) -> bytes:
        pending = self._pending
        chunk = pending[0]
        offset = self._pending_offset
        if offset == 0 and len(chunk) <= max_bytes:
            self._pending_size -= len(chunk)
            return pending.popleft()
        # Small reads of a large chunk: copy only what is returned, never the rest.
        piece = chunk[offset : offset + max_bytes]
        self._pending_size -= len(piece)
        offset += len(piece)
        if offset == len(chunk):
            pending.popleft()
            offset = 0
        self._pending_offset = offset
        return piece

    async def _receive_more(self) -> None:
        """Read one chunk from the socket, keeping the peer fed with keep-alives meanwhile."""
        keepalive, idle_timeout = self.keepalive, self.idle_timeout
        if self._watchdogs or (keepalive is None and idle_timeout is None):
            # run_keepalive() is watching the clocks (or there are none): a plain read,
            # without the cost of a cancel scope per chunk.
            self._waiting = True
            self._reader = _APPLICATION
            try:
                chunk = await self._read_socket()
            finally:
                self._waiting = False
                self._reader = _NOBODY
        else:
            # Idle time is counted while someone reads: the time since the last read ended
            # (an application busy writing, say) is not silence from the peer, whose
            # keep-alives may be waiting in the socket. Without this, the first receive()
            # after a long send-only phase failed at once, before reading what had arrived.
            self._last_received += self._clock() - self._read_ended
            self._reader = _APPLICATION
            try:
                chunk = await self._read_socket_with_timers(keepalive, idle_timeout)
            finally:
                self._reader = _NOBODY
                self._read_ended = self._clock()
        self._on_chunk(chunk)
        await self._after_chunk()

    def _on_chunk(self, chunk: bytes | None) -> None:
        if chunk is None or self._closed:
            return
        self._last_received = self._clock()
        self._on_events(self._machine.receive_data(chunk))

    async def _read_socket_with_timers(
        self, keepalive: float | None, idle_timeout: float | None
    ) -> bytes | None:
        while True:
            now = self._clock()
            deadline = math.inf
            if idle_timeout is not None:
                if now - self._last_received >= idle_timeout:
                    await self._fail(IdleTimeoutError(f"nothing received for {idle_timeout} s"))
                    return None
                deadline = self._last_received + idle_timeout
            if keepalive is not None and not self._eof_sent:
                if now - self._last_sent >= keepalive:
                    await self._send_keepalive_if_due()
                    continue
                deadline = min(deadline, self._last_sent + keepalive)
            if self._timed_stream is not None:
                return await self._read_socket(deadline)
            with anyio.move_on_after(deadline - now):
                return await self._read_socket()

    async def _read_socket(self, deadline: float = math.inf) -> bytes | None:
        """The next chunk (b"" at the peer's FIN), or None when closed meanwhile or, on
        a :class:`DeadlineReceiveStream`, when ``deadline`` passed first."""
        try:
            if self._timed_stream is not None:
                return await self._timed_stream.receive_before(deadline, _RECEIVE_SIZE)
            return await self._stream.receive(_RECEIVE_SIZE)
        except anyio.EndOfStream:
            return b""
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError) as exc:
            if self._closed:
                return None  # receive() reports why: a stored fault, or closed
            await self._close_transport(broken=True)
            raise anyio.BrokenResourceError from exc

    def _raise_closed(self) -> None:
        if self._broken:
            raise anyio.BrokenResourceError
        raise anyio.ClosedResourceError

    def _on_events(self, events: list[Event] | tuple[Event, ...]) -> None:
        for event in events:
            if type(event) is Data:
                self._pending.append(event.data)
                self._pending_size += len(event.data)
            elif type(event) is EndOfStream:
                self._ended = True
            elif type(event) is ProtocolViolation:
                self._error = event.error
            # KeepAlive: its arrival already refreshed the idle clock.

    async def _fail(self, error: ProtocolError | IdleTimeoutError) -> None:
        self._error = error
        await self._close_transport(broken=True)

    # -- sending ----------------------------------------------------------------------------

    async def send(self, item: bytes) -> None:
        """Encrypt and send ``item`` (cut into frames); concurrent sends never interleave.

        :raises anyio.ClosedResourceError: after ``aclose()`` or ``send_eof()``
        :raises anyio.BrokenResourceError: the socket failed, or the peer broke the protocol
        """
        self._check_sendable()
        size = len(item)
        if size == 0:
            return
        await self._take_send_turn()
        try:
            self._check_sendable()
            if size <= _SEND_BATCH:
                await self._write(self._machine.send(item))
            else:
                view = memoryview(item)
                for start in range(0, size, _SEND_BATCH):
                    await self._write(self._machine.send(view[start : start + _SEND_BATCH]))
        finally:
            self._end_send_turn()

    async def send_message(self, message: bytes | bytearray | memoryview) -> None:
        """Send ``message`` as one secret-stream message (one frame): the peer's
        :meth:`receive_message` (or JS ``'data'`` event) gets it whole. Empty messages are
        not sent (an empty frame is a keep-alive).

        :raises ~p2pswarm.errors.LocalProtocolError: it does not fit in one frame (16 MiB)
        :raises anyio.ClosedResourceError: after ``aclose()`` or ``send_eof()``
        :raises anyio.BrokenResourceError: the socket failed, or the peer broke the protocol
        """
        self._check_sendable()
        if not message:
            return
        await self._take_send_turn()
        try:
            self._check_sendable()
            await self._write(self._machine.send_message(message))
        finally:
            self._end_send_turn()

    async def send_messages(self, messages: Sequence[bytes | bytearray | memoryview]) -> None:
        """Send each of ``messages`` as one secret-stream message, in order, in a single
        transport write: what a message protocol's writer uses to send what queued up
        meanwhile without a system call per message. Raises what :meth:`send_message` does.
        """
        self._check_sendable()
        await self._take_send_turn()
        try:
            self._check_sendable()
            machine = self._machine
            data = b"".join([machine.send_message(m) for m in messages if m])
            if data:
                await self._write(data)
        finally:
            self._end_send_turn()

    async def _wait_send_turn(self) -> None:
        event = anyio.Event()
        self._send_waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self._end_send_turn()  # the turn was handed to us: pass it on
            else:
                self._send_waiters.remove(event)
            raise

    def _end_send_turn(self) -> None:
        if self._send_waiters:
            self._send_waiters.popleft().set()  # hand the turn over; still sending
        else:
            self._sending = False

    async def _take_send_turn(self) -> None:
        if self._sending:
            await self._wait_send_turn()
        else:
            self._sending = True

    async def send_keepalive(self) -> None:
        """Send one keep-alive now."""
        self._check_sendable()
        await self._take_send_turn()
        try:
            self._check_sendable()
            await self._write(self._machine.send_keepalive())
        finally:
            self._end_send_turn()

    def _check_sendable(self) -> None:
        if self._closed:
            self._raise_closed()
        if self._error is not None:
            # A fault is known (found with the handshake's last bytes) but not yet raised.
            raise anyio.BrokenResourceError
        if self._eof_sent:
            raise anyio.ClosedResourceError

    async def _send_keepalive_if_due(self, *, force: bool = False) -> None:
        await self._take_send_turn()
        try:
            # Someone else may have sent while this task waited for its turn.
            if self._closed or self._eof_sent or self._error is not None:
                self._last_sent = self._clock()  # nothing to keep alive any more
                return
            keepalive = self.keepalive
            if not force and keepalive is not None and self._clock() - self._last_sent < keepalive:
                return
            await self._write(self._machine.send_keepalive())
        finally:
            self._end_send_turn()

    async def _write(self, data: bytes) -> None:
        try:
            await self._stream.send(data)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError) as exc:
            if self._closed:
                self._raise_closed()
            await self._close_transport(broken=True)
            raise anyio.BrokenResourceError from exc
        self._last_sent = self._clock()

    async def send_eof(self) -> None:
        """Half-close: tell the peer no more data comes (secret-stream has no end frame;
        this is a TCP FIN). Receiving goes on. Keep-alives stop."""
        if self._closed:
            self._raise_closed()
        await self._take_send_turn()
        try:
            if self._eof_sent:
                return
            self._eof_sent = True
            await self._stream.send_eof()
        finally:
            self._end_send_turn()
        if self._ended and not self._closed:
            await self._close_transport()  # both directions have ended: a full close

    async def run_keepalive(self) -> None:
        """Watch the connection until it closes: run it in a task beside whoever uses the
        connection (a listener's ``serve`` and the swarm do).

        It sends a keep-alive whenever nothing was sent for ``keepalive`` seconds (until
        ``send_eof()``), and while it runs it also enforces ``idle_timeout`` for a task
        blocked in ``receive()`` (within a quarter of the timeout), which then lets
        ``receive()`` skip its own timers: one cancel scope less per read.

        While no ``receive()`` is under way it reads for the application, so that a peer's
        close, reset or silence is noticed whether or not anybody reads: decrypted bytes
        wait for ``receive()`` (at most :data:`READ_AHEAD` of them; past that it stops
        reading and the peer is held back by the transport), and the idle timeout applies.
        At the peer's end of stream it closes the connection once this side has ended
        too; until then it probes with a keep-alive at once and again 0.05, 0.25 and 1 s
        later, so a peer that is gone (its host answers with a reset) is found within
        about a round trip, while a peer that only half-closed keeps the connection. It
        returns when the connection closes and never raises for a broken socket.
        """
        self._watchdogs += 1
        if self._hangup_stream is not None:
            self._hangup_stream.set_hangup_callback(self._on_hangup)
        try:
            while not self._closed:
                if (
                    self._reader == _NOBODY
                    and not self._waiting
                    and not self._ended
                    and self._error is None
                    and self._pending_size < READ_AHEAD
                ):
                    await self._read_ahead()
                    continue
                now = self._clock()
                wake = self._probe_at
                if now >= wake:
                    # Probe again, until the delays are spent: then the keep-alives go on.
                    self._probe_count += 1
                    self._probe_at = (
                        self._probed_at + _REPROBES[self._probe_count]
                        if self._probe_count < len(_REPROBES)
                        else math.inf
                    )
                    try:
                        await self._send_keepalive_if_due(force=True)
                        # A stream may report a failed write only at the next one (anyio's
                        # on asyncio): after one turn of the loop, once more.
                        await anyio.lowlevel.checkpoint()
                        await self._send_keepalive_if_due(force=True)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        return
                    continue
                keepalive = None if self._eof_sent else self.keepalive
                if keepalive is not None:
                    due = self._last_sent + keepalive
                    if now >= due:
                        try:
                            await self._send_keepalive_if_due()
                        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                            return
                        continue
                    wake = min(wake, due)
                idle_timeout = self.idle_timeout
                if idle_timeout is not None and not self._ended:
                    if self._waiting and self._reader != _WATCHDOG:
                        deadline = self._last_received + idle_timeout
                        if now >= deadline:
                            await self._fail(
                                IdleTimeoutError(f"nothing received for {idle_timeout} s")
                            )
                            return
                        wake = min(wake, deadline)
                    else:
                        wake = min(wake, now + idle_timeout / 4)
                if not self._ended:
                    # Look again later whether the application stopped reading.
                    wake = min(wake, now + _RECHECK)
                # Parked until the clock says so, the connection closes, or (on the lean
                # asyncio stream) the peer hangs up while the application reads nothing.
                parked = self._wake = anyio.Event()
                try:
                    with anyio.move_on_after(wake - now):
                        await parked.wait()
                finally:
                    self._wake = None
        finally:
            self._watchdogs -= 1
            if not self._watchdogs and self._hangup_stream is not None:
                self._hangup_stream.set_hangup_callback(None)

    def _on_hangup(self) -> None:
        parked = self._wake
        if parked is not None:
            parked.set()

    async def _read_ahead(self) -> None:
        """Read one chunk for the application (nobody is receiving), timers included."""
        try:
            self._reader = _WATCHDOG
            try:
                chunk = await self._read_socket_with_timers(self.keepalive, self.idle_timeout)
            except anyio.BrokenResourceError:
                return  # closed as broken: receive() reports it after the buffered bytes
            finally:
                self._reader = _NOBODY
            self._on_chunk(chunk)
            await self._after_chunk()
        finally:
            handover = self._handover
            if handover is not None:
                self._handover = None
                handover.set()

    async def _after_chunk(self) -> None:
        """Close at a fault, or cleanly once both directions have ended."""
        if self._closed:
            return
        if self._error is not None:
            await self._close_transport(broken=True)
        elif self._ended:
            if self._eof_sent:
                await self._close_transport()  # both directions have ended
            elif self._watchdogs and not self._probed:
                # The peer ended. A keep-alive now makes its host answer with a reset if
                # the socket is gone there; one of the watchdog's next probes then fails
                # and closes this side. A peer that only half-closed takes them in its
                # stride.
                self._probed = True
                self._probed_at = self._clock()
                self._probe_at = self._probed_at + _REPROBES[0]
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await self._send_keepalive_if_due(force=True)

    # -- closing ----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connection (and its socket) at once; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._aclosed = True
        self._machine.close()
        self._pending.clear()
        self._pending_offset = 0
        self._pending_size = 0
        await self._close_transport()

    async def _close_transport(self, *, broken: bool = False) -> None:
        if not self._closed:
            self._broken = broken
        self._closed = True
        self._machine.close()
        handover = self._handover
        if handover is not None:
            self._handover = None
            handover.set()
        self._on_hangup()
        with anyio.CancelScope(shield=True):
            await anyio.aclose_forcefully(self._stream)
        self._closed_event.set()

    async def _close_if_failed(self) -> None:
        """Close at once when the bytes that came with the handshake already broke it."""
        if self._error is not None and not self._closed:
            await self._close_transport(broken=True)

    async def wait_closed(self) -> None:
        """Return once the connection is closed, for any reason."""
        await self._closed_event.wait()
