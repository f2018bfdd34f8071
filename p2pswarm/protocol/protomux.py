"""protomux as a sans-IO state machine, wire-identical to JS ``protomux`` 3.12.1.

protomux multiplexes channels over one message stream (a secret stream: each of its
messages is one protomux message). A message is ``uint channel, uint type, body``, where
``channel`` is the *sender's* local id of the channel. Channel 0 is the control channel:

====  ========  =====================================================================
type  name      body
====  ========  =====================================================================
0     batch     ``uint channel``, then ``(uint len, len bytes of "uint type, body")*``;
                a ``len`` of 0 is followed by the ``uint channel`` of what comes next
1     open      ``uint localId, string protocol, optionalBuffer id``, then the handshake
2     reject    ``uint remoteId`` (the opener's id of the refused channel)
3     close     ``uint localId``
====  ========  =====================================================================

A channel is *paired* on ``(protocol, id)``: both sides open one (in any order) and each
learns the other's id from its open message; a channel opened only by the remote waits in
a backlog until this side creates a matching one (:meth:`Protomux.create_channel`), or is
rejected at once when nothing is paired for its protocol (:meth:`Protomux.pair`), as JS does.
Messages for such a waiting channel are buffered (JS counts 512 bytes plus the message
each and pauses its stream past 32 KiB: :attr:`Protomux.paused` says the same here); past
``max_buffered_hard`` the peer is refused with
:class:`~p2pswarm.errors.ChannelOverflowError`.

Driving it (bytes in, events out, messages out)::

    mux = Protomux()
    channel = mux.create_channel("my-protocol", b"id")
    mux.open(channel, handshake=b"")
    write_each(mux.messages_to_send())        # one secret-stream message each
    for event in mux.receive(message):        # one secret-stream message
        ...                                   # ChannelOpened, ChannelMessage, ChannelClosed
    mux.send(channel, 0, b"payload")

Differences from JS, only where JS would crash or grow without bound, each a typed
:class:`~p2pswarm.errors.ChannelProtocolError` that drops the connection: an open of
channel 0 (JS writes a malformed reject), a batch inside a batch, a batch entry longer
than its batch (JS truncates it), trailing bytes after a reject or close, more unpaired
opens than ``max_backlog`` (JS: unbounded, a TODO), a remote channel table longer than
``max_channels``, a message longer than ``max_message_size``. Like JS, messages for
unknown or closed channels and unknown message or control types are ignored (a closed
channel's messages may still be in flight).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final

from ..errors import ChannelClosedError, ChannelOverflowError, ChannelProtocolError
from .compact import Reader, Writer, encode_uint, uint_size

__all__ = (
    "MAX_BATCH",
    "MAX_BUFFERED",
    "BatchEnd",
    "Channel",
    "ChannelClosed",
    "ChannelMessage",
    "ChannelOpened",
    "Event",
    "PairRequest",
    "Protomux",
)

#: JS protomux pauses its stream when this much (512 bytes per message + its size) waits
#: for channels not yet paired.
MAX_BUFFERED: Final = 32768
#: JS protomux sends a corked batch once it reaches this size and starts another.
MAX_BATCH: Final = 8 * 1024 * 1024
#: Per buffered message, the overhead JS counts on top of its size.
_BUFFER_OVERHEAD: Final = 512

DEFAULT_MAX_BUFFERED_HARD: Final = 1024 * 1024
DEFAULT_MAX_BACKLOG: Final = 256
DEFAULT_MAX_CHANNELS: Final = 4096
#: The largest secret-stream message (a 16 MiB - 1 frame less the 17-byte tag).
DEFAULT_MAX_MESSAGE_SIZE: Final = (1 << 24) - 1 - 17
#: Bounds on the strings of an open message (JS has none; real protocols use a few bytes).
MAX_PROTOCOL_SIZE: Final = 1024
MAX_ID_SIZE: Final = 1024

_BATCH, _OPEN, _REJECT, _CLOSE = 0, 1, 2, 3


class Channel:
    """One channel, as the state machine sees it; the I/O layer wraps it."""

    __slots__ = ("closed", "id", "local_id", "opened", "protocol", "remote_id", "user_data")

    def __init__(self, protocol: str, id: bytes | None, user_data: object = None) -> None:
        self.protocol = protocol
        self.id = id
        #: Our id for it (0 until opened locally), the remote's (0 until its open arrived).
        self.local_id = 0
        self.remote_id = 0
        #: Both sides opened it (JS ``channel.opened``).
        self.opened = False
        self.closed = False
        self.user_data = user_data

    def __repr__(self) -> str:
        ident = "" if self.id is None else " id=" + self.id.hex()[:16]
        return (
            f"<Channel {self.protocol!r}{ident} local={self.local_id} remote={self.remote_id}"
            f"{' opened' if self.opened else ''}{' closed' if self.closed else ''}>"
        )


@dataclass(frozen=True, slots=True)
class ChannelOpened:
    """Both sides opened ``channel``; ``handshake`` is the rest of the remote's open message."""

    channel: Channel
    handshake: bytes


@dataclass(frozen=True, slots=True)
class ChannelMessage:
    """Message ``type`` (index in addMessage order) arrived on ``channel``."""

    channel: Channel
    type: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class ChannelClosed:
    """``channel`` closed: by the remote (a close or a reject) when ``remote``, else by us."""

    channel: Channel
    remote: bool


@dataclass(frozen=True, slots=True)
class PairRequest:
    """The remote opened a channel nothing here matches yet but :meth:`Protomux.pair` asked
    to hear about: create a matching channel now (or not), then call
    :meth:`Protomux.pair_done` with the same ``protocol`` and ``id`` (JS awaits ``notify``)."""

    protocol: str
    id: bytes | None


@dataclass(frozen=True, slots=True)
class BatchEnd:
    """A received batch of several messages was delivered: the state machine corked while
    it was decoded so that replies go out as one batch; call :meth:`Protomux.uncork` once
    the handlers of its messages are done (JS waits for their promises)."""


Event = ChannelOpened | ChannelMessage | ChannelClosed | PairRequest | BatchEnd


@dataclass(slots=True)
class _Remote:
    """A channel the remote opened, by the remote's id."""

    handshake: bytes
    channel: Channel | None = None
    #: Messages that arrived before the channel was paired here (None once paired).
    pending: list[tuple[int, bytes]] | None = None


@dataclass(slots=True)
class _Info:
    """Per (protocol, id): JS's ``info`` record."""

    key: tuple[str, bytes | None]
    opened: int = 0
    pairing: int = 0
    incoming: deque[int] = field(default_factory=deque)
    outgoing: deque[int] = field(default_factory=deque)


def _key(protocol: str, id: bytes | None) -> tuple[str, bytes | None]:
    # JS keys ``protocol + '##' + hex(id)``, with an empty id the same as none.
    return (protocol, id or None)


class Protomux:
    """The multiplexer of one connection. See the module docstring."""

    def __init__(
        self,
        *,
        max_buffered_hard: int = DEFAULT_MAX_BUFFERED_HARD,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        max_channels: int = DEFAULT_MAX_CHANNELS,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self.max_buffered_hard = max_buffered_hard
        self.max_backlog = max_backlog
        self.max_channels = max_channels
        self.max_message_size = max_message_size
        self._local: list[Channel | None] = []
        self._free: list[int] = []
        self._remote: list[_Remote | None] = []
        self._infos: dict[tuple[str, bytes | None], _Info] = {}
        self._notify: set[tuple[str, bytes | None]] = set()
        self._outbox: list[bytes] = []
        self._events: list[Event] = []
        self._backlog = 0
        #: What JS counts as buffered for unpaired channels (512 + size per message).
        self.buffered = 0
        self.corked = 0
        self._batch: list[tuple[int, bytes]] | None = None
        self._batch_size = 0
        self.destroyed = False

    # -- output -------------------------------------------------------------------------

    def messages_to_send(self) -> list[bytes]:
        """The messages to write, each as one secret-stream message, in order."""
        out, self._outbox = self._outbox, []
        return out

    @property
    def has_output(self) -> bool:
        return bool(self._outbox)

    def events(self) -> list[Event]:
        """Events caused by local calls (a channel paired from the backlog, local closes)."""
        out, self._events = self._events, []
        return out

    @property
    def paused(self) -> bool:
        """True while more than JS's ``MAX_BUFFERED`` waits for unpaired channels: stop
        reading until it drops (JS pauses its stream)."""
        return self.buffered > MAX_BUFFERED

    # -- channels -----------------------------------------------------------------------

    def pair(self, protocol: str, id: bytes | None = None) -> None:
        """Ask for a :class:`PairRequest` when the remote opens ``(protocol, id)`` (``id``
        None: any id) and nothing matches; without one such opens are rejected at once."""
        self._notify.add(_key(protocol, id))

    def unpair(self, protocol: str, id: bytes | None = None) -> None:
        self._notify.discard(_key(protocol, id))

    def opened(self, protocol: str, id: bytes | None = None) -> bool:
        """Whether a channel for ``(protocol, id)`` is open locally."""
        info = self._infos.get(_key(protocol, id))
        return info is not None and info.opened > 0

    def create_channel(
        self,
        protocol: str,
        id: bytes | None = None,
        *,
        unique: bool = True,
        user_data: object = None,
    ) -> Channel | None:
        """A new channel for ``(protocol, id)``, or None when ``unique`` and one is already
        open (JS returns null). When the remote already opened one, it is paired at once
        and a :class:`ChannelOpened` is queued (see :meth:`events`), followed by whatever
        was buffered for it; call :meth:`open` to send our side's open either way."""
        if self.destroyed:
            return None
        if id is not None:
            id = bytes(id)
        info = self._get(protocol, id)
        if unique and info.opened > 0:
            return None
        channel = Channel(protocol, id, user_data)
        if not info.incoming:
            return channel
        self._backlog -= 1
        remote_id = info.incoming.popleft()
        remote = self._remote[remote_id - 1]
        if remote is None:
            return None
        channel.remote_id = remote_id
        remote.channel = channel
        self._fully_open(channel, remote)
        return channel

    def open(self, channel: Channel, handshake: bytes = b"") -> None:
        """Send our open for ``channel`` (``handshake`` already encoded)."""
        if channel.local_id != 0 or channel.closed:
            raise ValueError("the channel is already open or closed")
        if self._free:
            index = self._free.pop()
        else:
            index = len(self._local)
            self._local.append(None)
        info = self._get(channel.protocol, channel.id)
        info.opened += 1
        channel.local_id = index + 1
        self._local[index] = channel
        if channel.remote_id == 0:
            info.outgoing.append(channel.local_id)
        body = (
            Writer()
            .uint(_OPEN)
            .uint(channel.local_id)
            .string(channel.protocol)
            .buffer(channel.id)
            .raw(handshake)
        )
        self._write0(body.getvalue())

    def close(self, channel: Channel) -> None:
        """Close ``channel`` and tell the remote; idempotent."""
        if channel.closed:
            return
        local_id = channel.local_id
        self._close(channel, remote=False)
        if local_id:
            self._write0(bytes((_CLOSE,)) + encode_uint(local_id))

    def send(self, channel: Channel, type: int, payload: bytes) -> None:
        """Send message ``type`` on ``channel``.

        :raises ~p2pswarm.errors.ChannelClosedError: the channel is closed
        """
        if channel.closed:
            raise ChannelClosedError(f"channel {channel.protocol!r} is closed")
        if channel.local_id == 0:
            raise ValueError("open() the channel before sending on it")
        if self._batch is not None:
            self._push_batch(channel.local_id, encode_uint(type) + payload)
        else:
            self._outbox.append(encode_uint(channel.local_id) + encode_uint(type) + payload)

    def cork(self) -> None:
        """Collect every message from now on into one batch (nests; JS ``cork``)."""
        self.corked += 1
        if self.corked == 1:
            self._batch = []
            self._batch_size = 1

    def uncork(self) -> None:
        """End a :meth:`cork`; the outermost sends the batch."""
        if self.corked == 0:
            raise ValueError("uncork() without cork()")
        self.corked -= 1
        if self.corked == 0:
            assert self._batch is not None
            self._send_batch(self._batch)
            self._batch = None

    def channels(self) -> list[Channel]:
        """The channels open locally."""
        return [c for c in self._local if c is not None]

    def destroy(self) -> list[Event]:
        """The stream is gone: close every channel (as closed by the remote, as JS does)."""
        self.destroyed = True
        for channel in self._local:
            if channel is not None:
                self._close(channel, remote=True)
        for remote in self._remote:
            if remote is not None and remote.channel is not None:
                self._close(remote.channel, remote=True)
        self._batch = None
        self.corked = 0
        return self.events()

    # -- input --------------------------------------------------------------------------

    def receive(self, message: bytes | bytearray | memoryview) -> list[Event]:
        """Decode one received message; returns the events it (and earlier calls) caused.

        :raises ~p2pswarm.errors.ChannelProtocolError: the peer broke the protocol; drop
            the connection (``CompactDecodeError`` is one too, for malformed fields)
        """
        size = len(message)
        if size == 0:
            return self.events()  # JS ignores empty frames
        if size > self.max_message_size:
            raise ChannelProtocolError(
                f"a message of {size} bytes is above the maximum {self.max_message_size}"
            )
        if self.destroyed:
            return []
        data = bytes(message)
        reader = Reader(data)
        channel_id = reader.uint()
        type_ = reader.uint()
        if channel_id == 0 and type_ == _BATCH:
            self._on_batch(data, reader)
        else:
            self._decode(channel_id, type_, data, reader)
        return self.events()

    def _decode(self, channel_id: int, type_: int, data: bytes, reader: Reader) -> None:
        if channel_id == 0:
            if type_ == _OPEN:
                self._on_open(data, reader)
            elif type_ == _REJECT:
                self._on_reject(reader)
            elif type_ == _CLOSE:
                self._on_close(reader)
            elif type_ == _BATCH:
                raise ChannelProtocolError("a batch inside a batch")
            return  # unknown control types are ignored, as JS does
        remote = self._remote[channel_id - 1] if channel_id <= len(self._remote) else None
        if remote is None:
            return  # closed or unknown: may be a message still in flight (JS ignores it)
        payload = data[reader.offset :]
        if remote.pending is not None:
            remote.pending.append((type_, payload))
            self.buffered += _BUFFER_OVERHEAD + len(payload)
            if self.buffered > self.max_buffered_hard:
                raise ChannelOverflowError(
                    f"{self.buffered} bytes buffered for unpaired channels, above "
                    f"{self.max_buffered_hard}"
                )
            return
        assert remote.channel is not None
        self._events.append(ChannelMessage(remote.channel, type_, payload))

    def _on_batch(self, data: bytes, reader: Reader) -> None:
        channel_id = reader.uint()
        corked = False
        first = True
        end = len(data)
        while not reader.at_end():
            length = reader.uint()
            if length == 0:
                channel_id = reader.uint()
                continue
            start = reader.offset
            if start + length > end:
                raise ChannelProtocolError(
                    f"a batch entry of {length} bytes runs past its batch ({end - start} left)"
                )
            if first and start + length != end:
                self.cork()  # several messages: reply to them as one batch, as JS does
                corked = True
            first = False
            entry = data[start : start + length]
            sub = Reader(entry)
            type_ = sub.uint()
            self._decode(channel_id, type_, entry, sub)
            reader.offset = start + length
        if corked:
            self._events.append(BatchEnd())

    def _on_open(self, data: bytes, reader: Reader) -> None:
        remote_id = reader.uint()
        protocol = reader.string(MAX_PROTOCOL_SIZE)
        id = reader.optional_buffer(MAX_ID_SIZE)
        handshake = data[reader.offset :]
        if remote_id == 0:
            raise ChannelProtocolError("the remote tried to open the control channel")
        index = remote_id - 1
        if len(self._remote) == index:  # the remote may grow its ids by one
            if index >= self.max_channels:
                raise ChannelProtocolError(f"more than {self.max_channels} remote channels")
            self._remote.append(None)
        if index >= len(self._remote) or self._remote[index] is not None:
            raise ChannelProtocolError(f"invalid open message for channel {remote_id}")
        info = self._get(protocol, id)
        if info.outgoing:
            local_id = info.outgoing.popleft()
            channel = self._local[local_id - 1]
            if channel is None:
                self._free.append(local_id - 1)  # closed before the remote answered
                self._gc(info)
                return
            remote = _Remote(handshake, channel)
            self._remote[index] = remote
            channel.remote_id = remote_id
            self._fully_open(channel, remote)
            return
        self._remote[index] = _Remote(handshake, None, [])
        self._backlog += 1
        if self._backlog > self.max_backlog:
            raise ChannelProtocolError(f"more than {self.max_backlog} unpaired remote channels")
        info.incoming.append(remote_id)
        key = info.key
        if key in self._notify or (protocol, None) in self._notify:
            info.pairing += 1
            self._events.append(PairRequest(protocol, id))
        else:
            self._reject_unpaired(info)

    def pair_done(self, protocol: str, id: bytes | None = None) -> None:
        """A :class:`PairRequest` was handled: reject what is still unpaired (JS does so
        once its ``notify`` resolved)."""
        info = self._infos.get(_key(protocol, id))
        if info is None or info.pairing == 0:
            return
        info.pairing -= 1
        if info.pairing == 0:
            self._reject_unpaired(info)

    def _reject_unpaired(self, info: _Info) -> None:
        while info.incoming:
            remote_id = info.incoming.popleft()
            self._backlog -= 1
            remote = self._remote[remote_id - 1]
            if remote is not None and remote.pending is not None:
                for _, payload in remote.pending:
                    self.buffered -= _BUFFER_OVERHEAD + len(payload)
            self._remote[remote_id - 1] = None
            self._write0(bytes((_REJECT,)) + encode_uint(remote_id))
        self._gc(info)

    def _on_reject(self, reader: Reader) -> None:
        local_id = reader.uint()
        reader.finish()
        for info in self._infos.values():
            if local_id not in info.outgoing:
                continue
            info.outgoing.remove(local_id)
            channel = self._local[local_id - 1]
            self._free.append(local_id - 1)
            if channel is not None:
                self._close(channel, remote=True)
            self._gc(info)
            return
        raise ChannelProtocolError(f"a reject of channel {local_id}, which was never opened")

    def _on_close(self, reader: Reader) -> None:
        remote_id = reader.uint()
        reader.finish()
        if remote_id == 0 or remote_id > len(self._remote):
            return
        remote = self._remote[remote_id - 1]
        if remote is not None and remote.channel is not None:
            self._close(remote.channel, remote=True)

    # -- internals ----------------------------------------------------------------------

    def _get(self, protocol: str, id: bytes | None) -> _Info:
        key = _key(protocol, id)
        info = self._infos.get(key)
        if info is None:
            info = self._infos[key] = _Info(key)
        return info

    def _gc(self, info: _Info) -> None:
        if info.opened == 0 and not info.outgoing and not info.incoming:
            self._infos.pop(info.key, None)

    def _fully_open(self, channel: Channel, remote: _Remote) -> None:
        if channel.opened or channel.closed:
            return
        self._events.append(ChannelOpened(channel, remote.handshake))
        remote.handshake = b""
        pending, remote.pending = remote.pending, None
        if pending:
            for type_, payload in pending:
                self.buffered -= _BUFFER_OVERHEAD + len(payload)
                self._events.append(ChannelMessage(channel, type_, payload))
        channel.opened = True

    def _close(self, channel: Channel, *, remote: bool) -> None:
        if channel.closed:
            return
        channel.closed = True
        info = self._infos.get(_key(channel.protocol, channel.id))
        if channel.local_id:
            if info is not None:
                info.opened -= 1
            if channel.remote_id > 0:
                self._remote[channel.remote_id - 1] = None
                channel.remote_id = 0
                # The remote acknowledged our id: it may be reused now (otherwise its
                # open or reject frees it later).
                self._free.append(channel.local_id - 1)
            self._local[channel.local_id - 1] = None
            channel.local_id = 0
        elif channel.remote_id > 0:
            # Paired from the backlog but never opened here.
            self._remote[channel.remote_id - 1] = None
            channel.remote_id = 0
        if info is not None:
            self._gc(info)
        self._events.append(ChannelClosed(channel, remote))

    def _write0(self, body: bytes) -> None:
        """A control message (``body`` starts with its type)."""
        if self._batch is not None:
            self._push_batch(0, body)
        else:
            self._outbox.append(b"\x00" + body)

    def _push_batch(self, local_id: int, entry: bytes) -> None:
        batch = self._batch
        assert batch is not None
        if self._batch_size >= MAX_BATCH:
            self._send_batch(batch)
            batch = self._batch = []
            self._batch_size = 1
        if not batch or batch[-1][0] != local_id:
            self._batch_size += 1 + uint_size(local_id)
        self._batch_size += uint_size(len(entry)) + len(entry)
        batch.append((local_id, entry))

    def _send_batch(self, batch: list[tuple[int, bytes]]) -> None:
        if not batch:
            return
        prev = batch[0][0]
        parts = [b"\x00\x00", encode_uint(prev)]
        for local_id, entry in batch:
            if local_id != prev:
                prev = local_id
                parts.append(b"\x00")
                parts.append(encode_uint(local_id))
            parts.append(encode_uint(len(entry)))
            parts.append(entry)
        self._outbox.append(b"".join(parts))
