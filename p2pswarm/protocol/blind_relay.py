"""The blind-relay messages (JS ``blind-relay`` 1.6.1), byte for byte: sans-IO.

Both travel on the protomux channel ``blind-relay`` (:data:`PROTOCOL`; its id is the
client's public key, no handshake): message type 0 is ``pair``, type 1 ``unpair``::

    pair   = bitfield(7) flags (bit 0: isInitiator), fixed32 token, uint id, uint seq
    unpair = bitfield(7) flags (0),                   fixed32 token

``id`` is the sender's own UDX stream id (from the relay: the relay's stream for that side);
``seq`` is always 0 in 1.6.1. The decoders are strict: a truncated or over-long message, a
stream id beyond a u32, a non-canonical integer raise
:class:`~p2pswarm.errors.RelayMessageError`, and the Mux then drops the connection, as JS
protomux destroys its stream when an encoding throws. ``bitfield(7)`` is read as JS reads it
(one byte, or the 0xFD/0xFE/0xFF length-prefixed forms JS's decoder also takes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ..errors import CompactDecodeError, RelayMessageError
from .compact import Reader, Writer

__all__ = (
    "PAIR",
    "PROTOCOL",
    "TOKEN_SIZE",
    "UNPAIR",
    "Pair",
    "Unpair",
    "decode_pair",
    "decode_unpair",
    "encode_pair",
    "encode_unpair",
)

PROTOCOL: Final = "blind-relay"
TOKEN_SIZE: Final = 32
#: Message types in the channel, in JS ``addMessage`` order.
PAIR: Final = 0
UNPAIR: Final = 1
_U32: Final = 0xFFFFFFFF
_BITFIELD_SIZES: Final = {0xFD: 2, 0xFE: 4, 0xFF: 8}


@dataclass(frozen=True, slots=True)
class Pair:
    """One side asks to be paired (client to relay), or the relay's answer (``id`` is then
    the relay's stream for this side)."""

    is_initiator: bool
    token: bytes
    id: int
    seq: int = 0

    def __post_init__(self) -> None:
        _check_token(self.token)
        if not 0 <= self.id <= _U32:
            raise ValueError(f"a UDX stream id is a u32, got {self.id}")
        if self.seq < 0:
            raise ValueError("seq is a uint")


@dataclass(frozen=True, slots=True)
class Unpair:
    """Cancel a pairing (pending or established) by its token."""

    token: bytes

    def __post_init__(self) -> None:
        _check_token(self.token)


def _check_token(token: bytes) -> None:
    if not isinstance(token, bytes) or len(token) != TOKEN_SIZE:
        raise ValueError(f"a blind-relay token is {TOKEN_SIZE} bytes")


def encode_pair(message: Pair) -> bytes:
    writer = Writer()
    writer.uint8(1 if message.is_initiator else 0)
    writer.fixed(message.token, TOKEN_SIZE)
    writer.uint(message.id)
    writer.uint(message.seq)
    return writer.getvalue()


def encode_unpair(message: Unpair) -> bytes:
    writer = Writer()
    writer.uint8(0)
    writer.fixed(message.token, TOKEN_SIZE)
    return writer.getvalue()


def _read_flags(reader: Reader) -> int:
    """``bitfield(7)`` as compact-encoding-bitfield decodes it: its first data byte."""
    first = reader.uint8()
    size = _BITFIELD_SIZES.get(first)
    if size is None:
        return first
    return reader.fixed(size)[0]


def decode_pair(data: bytes) -> Pair:
    """:raises ~p2pswarm.errors.RelayMessageError: malformed"""
    try:
        reader = Reader(data)
        flags = _read_flags(reader)
        token = reader.fixed(TOKEN_SIZE)
        stream_id = reader.bounded_uint(_U32, "stream id")
        seq = reader.uint()
        reader.finish()
    except CompactDecodeError as exc:
        raise RelayMessageError(f"malformed blind-relay pair: {exc}") from None
    return Pair(bool(flags & 1), token, stream_id, seq)


def decode_unpair(data: bytes) -> Unpair:
    """:raises ~p2pswarm.errors.RelayMessageError: malformed"""
    try:
        reader = Reader(data)
        _read_flags(reader)
        token = reader.fixed(TOKEN_SIZE)
        reader.finish()
    except CompactDecodeError as exc:
        raise RelayMessageError(f"malformed blind-relay unpair: {exc}") from None
    return Unpair(token)
