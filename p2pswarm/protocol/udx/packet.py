"""The UDX packet: libudx's 20-byte header, its SACK list and payload (sans-IO codec).

Every UDX datagram starts with the same header, all integers little-endian
(libudx ``udx_write_header`` / ``process_packet``)::

    0  u8   magic 0xFF        4  u32  receiver's stream id   12  u32  seq (packet number)
    1  u8   version 1         8  u32  rwnd (free bytes)      16  u32  ack (next seq wanted)
    2  u8   type bits         3  u8   data offset

The type is a bit set (DATA, END, SACK, MESSAGE, DESTROY, HEARTBEAT; 0 is a pure ack). The
data offset counts bytes between the header and the payload: zero except in MTU probes,
whose padding it skips. In a SACK packet it is the length of the SACK list instead, and 0
there means "the whole remainder" (libudx never sends SACKs with a payload).

Versions: udx-native 1.21.3 (the pinned JS) and libudx HEAD ``a9af5de`` write the same header,
types and SACK lists; what changed between them is sender-local or a leniency. HEAD's
``mtu_probeify_packet`` check was inverted by #281 (HEAD no longer pads probes; 1.21.3 does
and reaches MTU 1500 against us, see the interop tests), #302 made the zero-window probe a
HEARTBEAT, and #279/#284 validate incoming SACK blocks as :mod:`.stream` does. We answer
both probe styles (a HEARTBEAT or a duplicate DATA gets an ack).

The decoder is strict where libudx is lenient (unknown type bits, a ragged SACK list): we
accept exactly what libudx writes, and a peer that writes anything else is not libudx.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from p2pswarm.errors import UDXPacketError

__all__ = (
    "DATA",
    "DESTROY",
    "END",
    "HEADER_SIZE",
    "HEARTBEAT",
    "KNOWN_TYPES",
    "MAGIC",
    "MAX_SACKS",
    "MESSAGE",
    "SACK",
    "VERSION",
    "Packet",
    "decode_packet",
    "encode_header",
    "encode_packet",
    "is_udx",
    "peek_stream_id",
)

MAGIC = 0xFF
VERSION = 1
HEADER_SIZE = 20

DATA = 0b000001
END = 0b000010
SACK = 0b000100
MESSAGE = 0b001000
DESTROY = 0b010000
HEARTBEAT = 0b100000
KNOWN_TYPES = DATA | END | SACK | MESSAGE | DESTROY | HEARTBEAT

#: libudx sends at most this many SACK blocks (``UDX_MAX_SACKS``).
MAX_SACKS = 50

_HEADER = struct.Struct("<BBBBIIII")
_BLOCK = struct.Struct("<II")


@dataclass(frozen=True, slots=True)
class Packet:
    """One decoded UDX packet. ``sacks`` holds ``(start, end)`` pairs, end exclusive."""

    type: int
    stream_id: int
    rwnd: int
    seq: int
    ack: int
    payload: bytes = b""
    sacks: tuple[tuple[int, int], ...] = ()
    padding: int = 0


def encode_header(
    type_: int, stream_id: int, rwnd: int, seq: int, ack: int, data_offset: int = 0
) -> bytes:
    """The 20 header bytes; numbers are taken modulo 2**32 like libudx's ``uint32_t``."""
    mask = 0xFFFFFFFF
    return _HEADER.pack(
        MAGIC, VERSION, type_, data_offset, stream_id & mask, rwnd & mask, seq & mask, ack & mask
    )


def encode_packet(packet: Packet) -> bytes:
    """Header, SACK list (a SACK packet) or padding and payload."""
    if packet.sacks:
        body = b"".join(_BLOCK.pack(s & 0xFFFFFFFF, e & 0xFFFFFFFF) for s, e in packet.sacks)
        header = encode_header(
            packet.type | SACK, packet.stream_id, packet.rwnd, packet.seq, packet.ack
        )
        return header + body
    header = encode_header(
        packet.type, packet.stream_id, packet.rwnd, packet.seq, packet.ack, packet.padding
    )
    return header + bytes(packet.padding) + packet.payload


def is_udx(datagram: bytes | bytearray | memoryview) -> bool:
    """Whether a datagram claims to be UDX (long enough, magic and version): the socket's
    demultiplexing test, the same as libudx's first check."""
    return len(datagram) >= HEADER_SIZE and datagram[0] == MAGIC and datagram[1] == VERSION


def peek_stream_id(datagram: bytes | bytearray | memoryview) -> int:
    """The receiver's stream id of a datagram that :func:`is_udx` accepted."""
    return int.from_bytes(datagram[4:8], "little")


def decode_packet(datagram: bytes | bytearray | memoryview) -> Packet:
    """Decode one datagram.

    :raises ~p2pswarm.errors.UDXPacketError: truncated, not UDX, unknown type bits, a data
        offset past the end, a SACK list that is ragged, too long, or has a block whose start
        is not before its end
    """
    size = len(datagram)
    if size < HEADER_SIZE:
        raise UDXPacketError(f"a UDX packet has a 20-byte header, got {size} bytes")
    magic, version, type_, offset, stream_id, rwnd, seq, ack = _HEADER.unpack_from(datagram)
    if magic != MAGIC or version != VERSION:
        raise UDXPacketError(f"not UDX version 1 (magic {magic:#x}, version {version})")
    if type_ & ~KNOWN_TYPES:
        raise UDXPacketError(f"unknown UDX type bits {type_:#x}")
    rest = size - HEADER_SIZE
    if type_ & SACK:
        length = offset if 0 < offset < rest else rest
        if length % _BLOCK.size:
            raise UDXPacketError(f"a SACK list of {length} bytes is not whole blocks")
        count = length // _BLOCK.size
        if count > MAX_SACKS:
            raise UDXPacketError(f"{count} SACK blocks, more than libudx's {MAX_SACKS}")
        sacks = tuple(
            _BLOCK.unpack_from(datagram, HEADER_SIZE + i * _BLOCK.size) for i in range(count)
        )
        for start, end in sacks:
            if not 0 < (end - start) & 0xFFFFFFFF < 0x80000000:
                raise UDXPacketError(f"SACK block [{start}, {end}) is empty or backwards")
        payload = bytes(datagram[HEADER_SIZE + length :])
        return Packet(type_, stream_id, rwnd, seq, ack, payload, sacks)
    if offset > rest:
        raise UDXPacketError(f"data offset {offset} is past the end ({rest} bytes follow)")
    payload = bytes(datagram[HEADER_SIZE + offset :])
    return Packet(type_, stream_id, rwnd, seq, ack, payload, (), offset)
