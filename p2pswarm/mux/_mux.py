"""Mux: protomux over one :class:`~p2pswarm.connection.Connection` (see :mod:`p2pswarm.mux`).

The I/O edge of :mod:`p2pswarm.protocol.protomux`: one reader (``receive_message`` ->
state machine -> channels) and one writer (the state machine's queued messages ->
``send_message``), both inside :meth:`Mux.run`. Everything the application calls that
only queues (``open``, ``close``, ``send_nowait``, ``uncork``) is synchronous, as in JS;
the writer sends it as soon as the Mux runs, so channels set up before ``run()`` are sent
before anything is read (no open of the peer can be rejected for arriving too early).
"""

from __future__ import annotations

import inspect
import logging
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import anyio
import anyio.abc

from ..connection import Connection
from ..errors import ChannelClosedError, ChannelProtocolError, CompactDecodeError
from ..protocol import protomux
from ..protocol.protomux import (
    BatchEnd,
    ChannelClosed,
    ChannelMessage,
    ChannelOpened,
    PairRequest,
)
from ._channel import Channel, OnClose, OnMessage, OnOpen
from .codecs import RAW, Codec

__all__ = ("DEFAULT_QUEUE_SIZE", "MessageSpec", "Mux", "Notify")

logger = logging.getLogger("p2pswarm.mux")

#: Bytes of queued messages handed to the connection per transport write.
_WRITE_BATCH = 256 * 1024
#: How long closing may wait for the last writes and ``on_close`` handlers.
_CLOSE_TIMEOUT = 5.0
#: Values a message type without ``on_message`` holds before the reader waits.
DEFAULT_QUEUE_SIZE = 64

#: ``notify(id)``: the remote opened a channel of a paired protocol; create it here (or not).
Notify = Callable[[bytes | None], Awaitable[None] | None]
#: An entry of ``messages=``: a codec, a ``(codec, on_message)`` pair, or None (skip a type).
MessageSpec = Codec[Any] | tuple[Codec[Any], OnMessage | None] | None

_muxes: weakref.WeakKeyDictionary[Connection, Mux] = weakref.WeakKeyDictionary()


class Mux:
    """Channels over one connection, wire-compatible with JS protomux.

    Make one per connection (:meth:`of` returns the connection's), create channels, then
    ``await mux.run()`` (or ``async with mux:``) for as long as the connection is used.
    ``limits`` go to :class:`~p2pswarm.protocol.protomux.Protomux`.
    """

    def __init__(
        self,
        connection: Connection,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        **limits: int,
    ) -> None:
        if connection in _muxes:
            raise ValueError("this connection already has a Mux: use Mux.of(connection)")
        _muxes[connection] = self
        self.connection = connection
        self.queue_size = queue_size
        #: Free for the owner (the swarm's hub stores the PeerInfo here).
        self.peer: Any = None
        self._core = protomux.Protomux(**limits)
        self._notify: dict[tuple[str, bytes | None], Notify] = {}
        self._wake = anyio.Event()
        self._write_lock = anyio.Lock()
        self._writing = False
        self._unpaused = anyio.Event()
        #: Event lists for the dispatcher (None: drain the state machine's local events).
        self._inbox: deque[list[protomux.Event] | None] = deque()
        self._inbox_ready = anyio.Event()
        self._inbox_space = anyio.Event()
        self._failure: Exception | None = None
        #: A task is delivering events (the reader inline, or the dispatcher).
        self._dispatching = False
        self._tg: anyio.abc.TaskGroup | None = None
        self._spawn_later: list[Awaitable[Any]] = []
        self._running = False
        self._done = anyio.Event()
        self._closed = False
        self.error: BaseException | None = None

    @classmethod
    def of(cls, connection: Connection, **options: Any) -> Mux:
        """The connection's Mux, made on first use (JS ``Protomux.from``)."""
        mux = _muxes.get(connection)
        return mux if mux is not None else cls(connection, **options)

    # -- channels ---------------------------------------------------------------------------

    def create_channel(
        self,
        protocol: str,
        id: bytes | None = None,
        *,
        handshake: Codec[Any] | None = None,
        messages: Sequence[MessageSpec] = (),
        on_open: OnOpen | None = None,
        on_close: OnClose | None = None,
        unique: bool = True,
        user_data: object = None,
    ) -> Channel | None:
        """A channel for ``(protocol, id)``, or None when ``unique`` and one is open already
        (or the Mux is closed), as JS ``createChannel``. Add message types with
        ``messages=`` or :meth:`Channel.add_message`, then :meth:`Channel.open`."""
        state = self._core.create_channel(protocol, id, unique=unique)
        if state is None:
            return None
        channel = Channel(
            self,
            state,
            handshake=handshake,
            on_open=on_open,
            on_close=on_close,
            queue_size=self.queue_size,
            user_data=user_data,
        )
        state.user_data = channel
        for spec in messages:
            if spec is None:
                channel.add_message(RAW, on_message=_ignore)
            elif isinstance(spec, tuple):
                channel.add_message(spec[0], on_message=spec[1])
            else:
                channel.add_message(spec)
        # Paired from the backlog: its open (and buffered messages) come after this returns.
        self._local_change()
        return channel

    def pair(self, protocol: str, notify: Notify, id: bytes | None = None) -> None:
        """Call ``notify(id)`` when the remote opens ``(protocol, id)`` (any id when None)
        and no channel here waits for it (JS ``pair``); without a pairing such an open is
        rejected at once. ``notify`` usually creates and opens the channel."""
        self._core.pair(protocol, id)
        self._notify[(protocol, id)] = notify

    def unpair(self, protocol: str, id: bytes | None = None) -> None:
        self._core.unpair(protocol, id)
        self._notify.pop((protocol, id), None)

    def opened(self, protocol: str, id: bytes | None = None) -> bool:
        """Whether a channel for ``(protocol, id)`` is open here."""
        return self._core.opened(protocol, id)

    @property
    def channels(self) -> list[Channel]:
        """The channels opened here and not closed."""
        return [c for s in self._core.channels() if (c := _channel(s)) is not None]

    # -- batching and back-pressure ---------------------------------------------------------

    def cork(self) -> None:
        """Batch every message until the matching :meth:`uncork` (JS ``cork``)."""
        self._core.cork()

    def uncork(self) -> None:
        self._core.uncork()
        self._local_change()

    @contextmanager
    def corked(self) -> Iterator[None]:
        """``with mux.corked():`` sends what is queued inside as one batch."""
        self.cork()
        try:
            yield
        finally:
            self.uncork()

    @property
    def drained(self) -> bool:
        """Nothing waits to be written (JS ``mux.drained``)."""
        return not self._core.has_output and not self._writing

    def _queued(self) -> bool:
        self._wake.set()
        return self.drained

    async def flush(self) -> None:
        """Write everything queued so far; returns once the connection took it."""
        async with self._write_lock:
            while self._core.has_output:
                self._writing = True
                try:
                    messages = self._core.messages_to_send()
                    # What queued up meanwhile goes in few transport writes, not one each.
                    start = 0
                    while start < len(messages):
                        end, size = start, 0
                        while end < len(messages) and (end == start or size < _WRITE_BATCH):
                            size += len(messages[end])
                            end += 1
                        await self.connection.send_messages(messages[start:end])
                        start = end
                finally:
                    self._writing = False

    # -- running ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    async def run(self) -> None:
        """Read and write until the connection ends (then every channel closes as closed by
        the remote). Concurrent calls wait for the first. A peer's protocol violation
        closes the connection and is raised here (a
        :class:`~p2pswarm.errors.ChannelProtocolError`); so is an error of a handler."""
        if self._running or self._closed:
            await self._done.wait()
            return
        self._running = True
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                for pending in self._spawn_later:
                    tg.start_soon(self._await, pending)
                self._spawn_later.clear()
                tg.start_soon(self._writer)
                tg.start_soon(self._dispatcher)
                try:
                    await self._reader()
                except Exception as exc:
                    self._failure = exc
                finally:
                    tg.cancel_scope.cancel()
            if self._failure is not None:
                failure, self._failure = self._failure, None
                self.error = failure
                with anyio.CancelScope(shield=True):
                    await self.connection.aclose()
                raise failure
        finally:
            self._tg = None
            with anyio.CancelScope(shield=True):
                await self._shutdown()
            self._done.set()

    async def __aenter__(self) -> Mux:
        self._cm_tg = anyio.create_task_group()
        await self._cm_tg.__aenter__()
        self._cm_tg.start_soon(self.run)
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        try:
            await self.aclose()
        finally:
            self._cm_tg.cancel_scope.cancel()
            await self._cm_tg.__aexit__(*exc_info)
        return None

    async def aclose(self) -> None:
        """Close every channel (their closes are sent) and stop; the connection stays open
        for its owner."""
        if self._closed:
            return
        for channel in self.channels:
            channel.close()
        with anyio.CancelScope(shield=True):
            try:
                with anyio.move_on_after(_CLOSE_TIMEOUT):
                    await self.flush()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
            await self._shutdown()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    async def wait_closed(self) -> None:
        """Return once the Mux stopped (its connection ended, or ``aclose()``)."""
        if self._closed and not self._running:
            return
        await self._done.wait()

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in the Mux's task group (cancelled when it stops); before
        ``run()`` it starts with it."""
        self._spawn(fn(*args))

    def _spawn(self, awaitable: Awaitable[Any]) -> None:
        if self._tg is not None:
            self._tg.start_soon(self._await, awaitable)
        elif not self._closed:
            self._spawn_later.append(awaitable)
        elif inspect.iscoroutine(awaitable):
            awaitable.close()

    async def _await(self, awaitable: Awaitable[Any]) -> None:
        """A task of the Mux: the connection ending is not its failure; anything else is
        a handler's error and stops the Mux (JS destroys the stream)."""
        try:
            await awaitable
        except (
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            anyio.EndOfStream,
            ChannelClosedError,
        ):
            pass
        except Exception as exc:
            self._failure = exc
            if self._tg is not None:
                self._tg.cancel_scope.cancel()

    async def _shutdown(self) -> None:
        """Close what is left (as closed by the remote, as JS does when its stream closes)
        and run those channels' ``on_close`` (bounded)."""
        if self._closed and self._core.destroyed:
            return
        self._closed = True
        self._inbox.clear()
        for pending in self._spawn_later:
            if inspect.iscoroutine(pending):
                pending.close()
        self._spawn_later.clear()
        events = [*self._core.events(), *self._core.destroy()]
        with anyio.move_on_after(_CLOSE_TIMEOUT):
            for event in events:
                if type(event) is ChannelClosed:
                    result = self._handle(event)
                    if result is not None:
                        try:
                            await result
                        except Exception:
                            logger.exception("on_close of a channel failed")
        self._wake.set()

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            try:
                await self.flush()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return  # the reader sees the end too and stops the Mux

    async def _reader(self) -> None:
        connection = self.connection
        core = self._core
        inbox = self._inbox
        while not self._closed:
            if core.paused:
                self._unpaused = anyio.Event()
                if core.paused:
                    await self._unpaused.wait()
                continue
            try:
                message = await connection.receive_message()
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            try:
                events = core.receive(message)
            except CompactDecodeError as exc:
                raise ChannelProtocolError(f"malformed protomux message: {exc}") from None
            if core.has_output:
                self._wake.set()
            if not events:
                continue
            if not inbox and not self._dispatching:
                # Nothing waits: deliver here, saving a hop to the dispatcher task (the
                # dispatcher stays off meanwhile, so events keep their order).
                self._dispatching = True
                try:
                    await self._dispatch(events)
                finally:
                    self._dispatching = False
                    if inbox:
                        self._inbox_ready.set()
                continue
            inbox.append(events)
            self._inbox_ready.set()
            # One decoded message ahead of the handlers at most: back-pressure.
            while len(inbox) > 1 and not self._closed:
                self._inbox_space = anyio.Event()
                await self._inbox_space.wait()

    async def _dispatcher(self) -> None:
        """The one task that runs handlers: events from the wire and from local calls, in
        the state machine's order."""
        inbox = self._inbox
        while True:
            while inbox and not self._dispatching:
                item = inbox.popleft()
                self._inbox_space.set()
                events = item if item is not None else self._core.events()
                self._dispatching = True
                try:
                    await self._dispatch(events)
                except Exception as exc:
                    self._failure = exc
                    if self._tg is not None:
                        self._tg.cancel_scope.cancel()
                    return
                finally:
                    self._dispatching = False
            self._inbox_ready = anyio.Event()
            await self._inbox_ready.wait()

    async def _dispatch(self, events: list[protomux.Event]) -> None:
        """Deliver events in order, awaiting handlers (back-pressure), then whatever the
        handlers' own calls caused."""
        queue = list(events)
        index = 0
        while index < len(queue):
            event = queue[index]
            index += 1
            result = self._handle(event)
            if result is not None:
                await result
            queue.extend(self._core.events())
        if not self._core.paused:
            self._unpaused.set()

    def _local_change(self) -> None:
        """A local call changed the state machine: its events go to the dispatcher (after
        the caller's synchronous setup, like JS's queueTick) and its messages to the writer."""
        inbox = self._inbox
        if not inbox or inbox[-1] is not None:
            inbox.append(None)
        self._inbox_ready.set()
        self._wake.set()
        if not self._core.paused:
            self._unpaused.set()

    def _handle(self, event: protomux.Event) -> Awaitable[None] | None:
        if type(event) is ChannelMessage:
            channel = _channel(event.channel)
            if channel is None or event.type >= len(channel.messages):
                return None  # an unknown type is ignored, as JS does
            return channel.messages[event.type]._deliver(event.payload)
        if type(event) is ChannelOpened:
            channel = _channel(event.channel)
            return None if channel is None else _awaitable(channel._opened(event.handshake))
        if type(event) is ChannelClosed:
            channel = _channel(event.channel)
            return None if channel is None else _awaitable(channel._closed(event.remote))
        if type(event) is PairRequest:
            # In a task of its own, as JS awaits notify without holding up other channels;
            # the channel's messages stay buffered (bounded) meanwhile.
            self._spawn(self._on_pair_request(event))
            return None
        if type(event) is BatchEnd:
            self._core.uncork()
            self._wake.set()
        return None

    async def _on_pair_request(self, event: PairRequest) -> None:
        notify = self._notify.get((event.protocol, event.id)) or self._notify.get(
            (event.protocol, None)
        )
        try:
            if notify is not None:
                result = notify(event.id)
                if inspect.isawaitable(result):
                    await result
        finally:
            self._core.pair_done(event.protocol, event.id)
            self._wake.set()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._running else "idle"
        return f"<Mux {state} channels={len(self._core.channels())} {self.connection!r}>"


def _channel(state: protomux.Channel) -> Channel | None:
    channel = state.user_data
    return channel if isinstance(channel, Channel) else None


def _ignore(value: object, channel: Channel) -> None:
    """The handler of a skipped message type (JS ``addMessage(null)``)."""


def _awaitable(result: Awaitable[None] | None) -> Awaitable[None] | None:
    return result if result is not None and inspect.isawaitable(result) else None
