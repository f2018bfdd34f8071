"""Channel and Message: the application's side of one protomux channel (see :mod:`p2pswarm.mux`)."""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

import anyio

from ..errors import ChannelClosedError
from ..protocol import protomux
from .codecs import RAW, Codec

__all__ = ("Channel", "ChannelOwner", "Message", "OnClose", "OnMessage", "OnOpen")

T = TypeVar("T")

#: ``on_message(value, channel)``, sync or async (awaited by the Mux's reader: back-pressure).
OnMessage = Callable[[Any, "Channel"], Awaitable[None] | None]
#: ``on_open(handshake, channel)``: both sides opened; ``handshake`` is the remote's, decoded.
OnOpen = Callable[[Any, "Channel"], Awaitable[None] | None]
#: ``on_close(remote, channel)``: ``remote`` is True when the peer closed or rejected it.
OnClose = Callable[[bool, "Channel"], Awaitable[None] | None]


class ChannelOwner(Protocol):
    """What a channel needs of its :class:`~p2pswarm.mux.Mux` (which is the only one):
    named here so that this module does not import the Mux's."""

    _core: protomux.Protomux

    @property
    def drained(self) -> bool: ...

    async def flush(self) -> None: ...

    def cork(self) -> None: ...

    def uncork(self) -> None: ...

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None: ...

    def _queued(self) -> bool: ...

    def _local_change(self) -> None: ...


class Message(Generic[T]):
    """Message type ``type`` of a channel (its index in ``messages`` / ``add_message`` order).

    Received values go to ``on_message`` when one is set, else into a bounded queue read
    with :meth:`receive` or ``async for``: while it is full the Mux stops reading the
    connection (the peer's sends then wait), so read what you do not handle.
    """

    def __init__(
        self,
        channel: Channel,
        type: int,
        codec: Codec[T],
        on_message: OnMessage | None,
        queue_size: int,
    ) -> None:
        self.channel = channel
        self.type = type
        self.codec = codec
        self.on_message = on_message
        self._queue_size = queue_size
        self._queue: deque[T] = deque()
        self._ended = False
        self._ready = anyio.Event()
        self._space = anyio.Event()

    def send_nowait(self, value: T) -> bool:
        """Queue ``value`` (it goes out in order, batched if corked); returns the drained
        hint of JS ``send``: False while earlier messages still wait for the connection.

        :raises ~p2pswarm.errors.ChannelClosedError: the channel is closed
        """
        channel = self.channel
        mux = channel.mux
        mux._core.send(channel._state, self.type, self.codec.encode(value))
        return mux._queued()

    async def send(self, value: T) -> None:
        """Send ``value`` and wait until it (and everything queued before it) was written to
        the connection: the per-channel back-pressure of protomux's ``drain``. Corked, it
        returns at once (the batch goes at the last ``uncork``).

        :raises ~p2pswarm.errors.ChannelClosedError: the channel is closed
        :raises anyio.BrokenResourceError: the connection failed
        """
        channel = self.channel
        mux = channel.mux
        mux._core.send(channel._state, self.type, self.codec.encode(value))
        await mux.flush()  # ourselves: no need to wake the writer

    async def receive(self) -> T:
        """The next value received (only without ``on_message``).

        :raises ~p2pswarm.errors.ChannelClosedError: the channel closed and the queue is empty
        """
        if self.on_message is not None:
            raise RuntimeError("this message type has an on_message handler")
        while not self._queue:
            if self._ended:
                raise ChannelClosedError(f"channel {self.channel.protocol!r} is closed")
            self._ready = anyio.Event()
            await self._ready.wait()
        value = self._queue.popleft()
        self._space.set()
        return value

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            try:
                yield await self.receive()
            except ChannelClosedError:
                return

    async def _deliver(self, payload: bytes) -> None:
        value = self.codec.decode(payload)
        if self.on_message is not None:
            result = self.on_message(value, self.channel)
            if inspect.isawaitable(result):
                await result
        else:
            while len(self._queue) >= self._queue_size and not self._ended:
                self._space = anyio.Event()
                await self._space.wait()
            if not self._ended:
                self._queue.append(value)
                self._ready.set()

    def _end(self) -> None:
        self._ended = True
        self._ready.set()
        self._space.set()


class Channel:
    """One protomux channel over a :class:`~p2pswarm.mux.Mux`; made by
    :meth:`Mux.create_channel <p2pswarm.mux.Mux.create_channel>`."""

    def __init__(
        self,
        mux: ChannelOwner,
        state: protomux.Channel,
        *,
        handshake: Codec[Any] | None,
        on_open: OnOpen | None,
        on_close: OnClose | None,
        queue_size: int,
        user_data: object,
    ) -> None:
        self.mux = mux
        self._state = state
        self.handshake_codec = handshake
        self.on_open = on_open
        self.on_close = on_close
        self.user_data = user_data
        self._queue_size = queue_size
        self.messages: list[Message[Any]] = []
        #: The remote's handshake, decoded, once both sides opened (None before or without).
        self.handshake: Any = None
        #: Whether the peer closed (or rejected) it; None while open.
        self.closed_by_remote: bool | None = None
        self._was_opened = False
        self._settled = anyio.Event()
        self._closed_event = anyio.Event()

    @property
    def protocol(self) -> str:
        return self._state.protocol

    @property
    def id(self) -> bytes | None:
        return self._state.id

    @property
    def opened(self) -> bool:
        """Both sides opened it (JS ``channel.opened``)."""
        return self._state.opened

    @property
    def closed(self) -> bool:
        return self._state.closed

    @property
    def drained(self) -> bool:
        """Nothing of this connection waits to be written (JS ``channel.drained``: the
        stream is shared, so it is the Mux's); ``await message.send()`` waits for it."""
        return self.mux.drained

    def add_message(
        self, codec: Codec[Any] = RAW, *, on_message: OnMessage | None = None
    ) -> Message[Any]:
        """Add the next message type (JS ``addMessage``): its type is its index."""
        message = Message(self, len(self.messages), codec, on_message, self._queue_size)
        self.messages.append(message)
        return message

    def open(self, handshake: object = None) -> None:
        """Send our open (with ``handshake`` encoded by the handshake codec); it goes out as
        soon as the Mux runs. Pairing completes when the remote opens the same
        ``(protocol, id)``: then ``on_open`` runs and :meth:`fully_opened` returns True."""
        payload = b""
        if self.handshake_codec is not None:
            payload = self.handshake_codec.encode(handshake)
        self.mux._core.open(self._state, payload)
        self.mux._local_change()

    async def fully_opened(self) -> bool:
        """Wait until both sides opened (True) or the channel closed first (False)."""
        await self._settled.wait()
        return self._was_opened

    def close(self) -> None:
        """Close the channel and tell the peer (JS ``close``); idempotent."""
        self.mux._core.close(self._state)
        self.mux._local_change()

    async def wait_closed(self) -> None:
        await self._closed_event.wait()

    def cork(self) -> None:
        self.mux.cork()

    def uncork(self) -> None:
        self.mux.uncork()

    def __repr__(self) -> str:
        return f"<mux.Channel {self._state!r}>"

    # -- from the Mux ------------------------------------------------------------------------

    def _opened(self, handshake: bytes) -> Awaitable[None] | None:
        if self.handshake_codec is not None:
            self.handshake = self.handshake_codec.decode(handshake)
        self._was_opened = True
        self._settled.set()
        if self.on_open is not None:
            return self.on_open(self.handshake, self)
        return None

    def _closed(self, remote: bool) -> Awaitable[None] | None:
        self.closed_by_remote = remote
        for message in self.messages:
            message._end()
        self._settled.set()
        self._closed_event.set()
        if self.on_close is not None:
            return self.on_close(remote, self)
        return None
