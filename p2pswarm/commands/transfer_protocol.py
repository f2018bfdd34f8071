"""The file-transfer protocol of ``p2pswarm send`` / ``receive`` (sans-IO: bytes in, messages out).

One file per exchange, over one encrypted connection::

    sender                                   receiver
    OFFER(version, size, blake2b-256, name) ->
                                          <- ACCEPT(offset)   resume from here (0: fresh)
                                          or REJECT(reason)
    DATA(bytes) ... until offset == size  ->
                                          <- DONE(status, reason)   after checking the hash

A dropped connection loses nothing: the receiver keeps what it has in a part file named
after the file's hash, and the next OFFER of the same file gets an ACCEPT at that offset.

Every frame is ``type u8 | length u32 big-endian | body``. The decoder treats the peer as
hostile: each type has a maximum body length checked before buffering it, fields are
validated strictly (a name is one path component, an offset is within the size, DATA never
runs past the size), and any violation is a
:class:`~p2pswarm.errors.RemoteProtocolError` after which the connection is dropped.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

from ..errors import RemoteProtocolError

__all__ = (
    "HASH_SIZE",
    "MAGIC",
    "MAX_CHUNK",
    "MAX_NAME_BYTES",
    "VERSION",
    "Accept",
    "Data",
    "Done",
    "DoneStatus",
    "FrameDecoder",
    "FrameType",
    "Message",
    "Offer",
    "ReceiverState",
    "Reject",
    "check_name",
    "encode",
)

MAGIC: Final = b"P2PF"
VERSION: Final = 1
HASH_SIZE: Final = 32
MAX_NAME_BYTES: Final = 255
MAX_REASON_BYTES: Final = 255
#: The largest DATA body; senders send chunks of at most this.
MAX_CHUNK: Final = 64 * 1024
#: A file may be up to 2**63 - 1 bytes (the offset is a signed-safe u64).
MAX_FILE_SIZE: Final = (1 << 63) - 1

_HEADER = struct.Struct("!BI")
_OFFER = struct.Struct("!4sBQ32sB")
_U64 = struct.Struct("!Q")


class FrameType(enum.IntEnum):
    OFFER = 1
    ACCEPT = 2
    REJECT = 3
    DATA = 4
    DONE = 5


_MAX_BODY: Final = {
    FrameType.OFFER: _OFFER.size + MAX_NAME_BYTES,
    FrameType.ACCEPT: _U64.size,
    FrameType.REJECT: MAX_REASON_BYTES,
    FrameType.DATA: MAX_CHUNK,
    FrameType.DONE: 1 + MAX_REASON_BYTES,
}


class DoneStatus(enum.IntEnum):
    OK = 0
    HASH_MISMATCH = 1
    FAILED = 2


@dataclass(frozen=True, slots=True)
class Offer:
    size: int
    digest: bytes
    name: str


@dataclass(frozen=True, slots=True)
class Accept:
    offset: int


@dataclass(frozen=True, slots=True)
class Reject:
    reason: str


@dataclass(frozen=True, slots=True)
class Data:
    chunk: bytes


@dataclass(frozen=True, slots=True)
class Done:
    status: DoneStatus
    reason: str = ""


Message = Offer | Accept | Reject | Data | Done


def check_name(name: str) -> str:
    """Return ``name`` if it is a safe file name (one path component), else raise ValueError.

    The receiver writes to ``out_dir / name``, so the name must not climb out of the
    directory, hide itself, or carry bytes a terminal or file system would interpret.
    """
    encoded = name.encode("utf-8", "surrogatepass")
    if not 1 <= len(encoded) <= MAX_NAME_BYTES:
        raise ValueError(f"a file name is 1..{MAX_NAME_BYTES} bytes of UTF-8")
    if name in (".", "..") or name.startswith(".") or any(c in name for c in "/\\\x00"):
        raise ValueError(f"unsafe file name {name!r}")
    if any(not c.isprintable() for c in name):
        raise ValueError(f"file name {name!r} contains control characters")
    try:
        encoded.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("file name is not valid UTF-8") from None
    return name


def _text(reason: str) -> bytes:
    return reason.encode("utf-8", "replace")[:MAX_REASON_BYTES]


def encode(message: Message) -> bytes:
    """The frame for ``message``; raises ValueError for values the protocol cannot carry."""
    if isinstance(message, Offer):
        if not 0 <= message.size <= MAX_FILE_SIZE or len(message.digest) != HASH_SIZE:
            raise ValueError("bad offer: size out of range or digest not 32 bytes")
        name = check_name(message.name).encode("utf-8")
        body = _OFFER.pack(MAGIC, VERSION, message.size, message.digest, len(name)) + name
        kind = FrameType.OFFER
    elif isinstance(message, Accept):
        if not 0 <= message.offset <= MAX_FILE_SIZE:
            raise ValueError("offset out of range")
        body, kind = _U64.pack(message.offset), FrameType.ACCEPT
    elif isinstance(message, Reject):
        body, kind = _text(message.reason), FrameType.REJECT
    elif isinstance(message, Data):
        if not 1 <= len(message.chunk) <= MAX_CHUNK:
            raise ValueError(f"a DATA chunk is 1..{MAX_CHUNK} bytes")
        body, kind = bytes(message.chunk), FrameType.DATA
    else:
        body, kind = bytes([message.status]) + _text(message.reason), FrameType.DONE
    return _HEADER.pack(kind, len(body)) + body


def _decode_body(kind: FrameType, body: bytes) -> Message:
    if kind is FrameType.OFFER:
        if len(body) < _OFFER.size:
            raise RemoteProtocolError("truncated OFFER")
        magic, version, size, digest, name_length = _OFFER.unpack_from(body)
        if magic != MAGIC:
            raise RemoteProtocolError("not a p2pswarm file transfer (bad magic)")
        if version != VERSION:
            raise RemoteProtocolError(f"unsupported file transfer version {version}")
        if size > MAX_FILE_SIZE:
            raise RemoteProtocolError("file size out of range")
        if len(body) != _OFFER.size + name_length:
            raise RemoteProtocolError("OFFER name length does not match the frame")
        try:
            name = check_name(body[_OFFER.size :].decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise RemoteProtocolError(f"bad file name in OFFER: {exc}") from None
        return Offer(size, digest, name)
    if kind is FrameType.ACCEPT:
        if len(body) != _U64.size:
            raise RemoteProtocolError("ACCEPT must be 8 bytes")
        (offset,) = _U64.unpack(body)
        if offset > MAX_FILE_SIZE:
            raise RemoteProtocolError("ACCEPT offset out of range")
        return Accept(offset)
    if kind is FrameType.REJECT:
        return Reject(body.decode("utf-8", "replace"))
    if kind is FrameType.DATA:
        if not body:
            raise RemoteProtocolError("empty DATA frame")
        return Data(body)
    if not body:
        raise RemoteProtocolError("empty DONE frame")
    try:
        status = DoneStatus(body[0])
    except ValueError:
        raise RemoteProtocolError(f"unknown DONE status {body[0]}") from None
    return Done(status, body[1:].decode("utf-8", "replace"))


class FrameDecoder:
    """Incremental frame decoder: ``feed(bytes)`` returns the messages completed so far.

    Buffers at most one frame (never more than the largest allowed body plus a header).
    After an error the decoder is unusable, as the connection should be.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._failed = False

    def feed(self, data: bytes) -> list[Message]:
        if self._failed:
            raise RemoteProtocolError("the transfer stream already failed")
        self._buffer += data
        messages: list[Message] = []
        try:
            while len(self._buffer) >= _HEADER.size:
                raw_kind, length = _HEADER.unpack_from(self._buffer)
                try:
                    kind = FrameType(raw_kind)
                except ValueError:
                    raise RemoteProtocolError(f"unknown frame type {raw_kind}") from None
                if length > _MAX_BODY[kind]:
                    raise RemoteProtocolError(
                        f"{kind.name} frame of {length} bytes (at most {_MAX_BODY[kind]})"
                    )
                end = _HEADER.size + length
                if len(self._buffer) < end:
                    break
                body = bytes(self._buffer[_HEADER.size : end])
                del self._buffer[:end]
                messages.append(_decode_body(kind, body))
        except RemoteProtocolError:
            self._failed = True
            self._buffer.clear()
            raise
        return messages

    @property
    def buffered(self) -> int:
        return len(self._buffer)


class ReceiverState:
    """The receiving side's sequence rules: an OFFER first, then DATA up to the size.

    ``accept(offset)`` records where the sender should resume; every DATA then advances
    :attr:`offset`, and :attr:`complete` turns True exactly at the size.
    """

    def __init__(self) -> None:
        self.offer: Offer | None = None
        self.offset = 0
        self._accepted = False

    def on_message(self, message: Message) -> Message:
        if self.offer is None:
            if not isinstance(message, Offer):
                raise RemoteProtocolError(f"expected OFFER, got {type(message).__name__}")
            self.offer = message
            return message
        if not isinstance(message, Data) or not self._accepted:
            raise RemoteProtocolError(f"unexpected {type(message).__name__} during a transfer")
        if self.offset + len(message.chunk) > self.offer.size:
            raise RemoteProtocolError("DATA runs past the offered size")
        self.offset += len(message.chunk)
        return message

    def accept(self, offset: int) -> Accept:
        if self.offer is None or not 0 <= offset <= self.offer.size:
            raise ValueError("accept() needs an offer and an offset within its size")
        self.offset, self._accepted = offset, True
        return Accept(offset)

    @property
    def accepted(self) -> bool:
        """Whether ``accept()`` was called (so DATA may come)."""
        return self._accepted

    @property
    def complete(self) -> bool:
        return self.offer is not None and self._accepted and self.offset == self.offer.size
