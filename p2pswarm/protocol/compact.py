"""The subset of JavaScript's ``compact-encoding`` that the Hyperswarm wires use.

dht-rpc, HyperDHT, protomux and blind-relay all lay their messages out with the
``compact-encoding`` and ``compact-encoding-net`` packages; this module produces and reads
the same bytes. Encoding goes through a :class:`Writer` (appends to one ``bytearray``);
decoding through a :class:`Reader` over a ``memoryview``, which never reads past its end.

Input is hostile, so the reader is stricter than JavaScript's where that costs no interop:
every read is bounds-checked, a ``uint`` must be in its shortest form (JavaScript always
writes it so, and a canonical form keeps signed bytes unambiguous), integers stay within
JavaScript's safe range, arrays and buffers have caller-chosen maxima, strings must be valid
UTF-8. Every failure raises :class:`~p2pswarm.errors.CompactDecodeError`.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Final, NamedTuple, TypeVar

from ..errors import CompactDecodeError

__all__ = (
    "MAX_ARRAY_LENGTH",
    "MAX_SAFE_INTEGER",
    "IPv4Address",
    "IPv6Address",
    "Reader",
    "Writer",
    "decode_uint",
    "encode_uint",
    "uint_size",
)

T = TypeVar("T")

#: JavaScript's ``Number.MAX_SAFE_INTEGER``: the JS packages refuse larger integers.
MAX_SAFE_INTEGER: Final = 2**53 - 1
#: The JS ``array`` decoder refuses longer arrays; callers pass much smaller maxima.
MAX_ARRAY_LENGTH: Final = 0x100000

_U16: Final = struct.Struct("<H")
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")


@functools.lru_cache(maxsize=4096)
def _packed_ipv4(host: str) -> bytes:
    """The 4 bytes of a dotted IPv4 address; cached, as a DHT writes the same few hosts
    over and over and ``ipaddress`` parsing dominates encoding otherwise."""
    return ipaddress.IPv4Address(host).packed


class IPv4Address(NamedTuple):
    """``compact-encoding-net``'s ``ipv4Address``: 4 address bytes, then the port as u16 LE."""

    host: str
    port: int


class IPv6Address(NamedTuple):
    """``compact-encoding-net``'s ``ipv6Address``: 16 address bytes, then the port as u16 LE."""

    host: str
    port: int


def uint_size(n: int) -> int:
    """How many bytes ``encode_uint(n)`` takes."""
    return 1 if n <= 0xFC else 3 if n <= 0xFFFF else 5 if n <= 0xFFFFFFFF else 9


def encode_uint(n: int) -> bytes:
    """``c.uint``: one byte up to 0xFC, else a 0xFD/0xFE/0xFF marker and a u16/u32/u64."""
    if n < 0 or n > MAX_SAFE_INTEGER:
        raise ValueError(f"a uint is 0..{MAX_SAFE_INTEGER}, got {n}")
    if n <= 0xFC:
        return bytes((n,))
    if n <= 0xFFFF:
        return b"\xfd" + _U16.pack(n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + _U32.pack(n)
    return b"\xff" + _U64.pack(n)


def decode_uint(data: bytes | bytearray | memoryview) -> int:
    """Decode a buffer that holds exactly one ``uint``."""
    reader = Reader(data)
    value = reader.uint()
    reader.finish()
    return value


class Writer:
    """Appends compact-encoded fields to one buffer; ``bytes(writer)`` or :meth:`getvalue`."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def getvalue(self) -> bytes:
        return bytes(self._buffer)

    def __bytes__(self) -> bytes:
        return bytes(self._buffer)

    def __len__(self) -> int:
        return len(self._buffer)

    def uint(self, n: int) -> Writer:
        if 0 <= n <= 0xFC:
            self._buffer.append(n)
        else:
            self._buffer += encode_uint(n)
        return self

    def uint8(self, n: int) -> Writer:
        if not 0 <= n <= 0xFF:
            raise ValueError(f"a uint8 is 0..255, got {n}")
        self._buffer.append(n)
        return self

    def uint16(self, n: int) -> Writer:
        self._buffer += _U16.pack(n)
        return self

    def uint24(self, n: int) -> Writer:
        if not 0 <= n <= 0xFFFFFF:
            raise ValueError(f"a uint24 is 0..{0xFFFFFF}, got {n}")
        self._buffer += n.to_bytes(3, "little")
        return self

    def uint32(self, n: int) -> Writer:
        self._buffer += _U32.pack(n)
        return self

    def uint64(self, n: int) -> Writer:
        if n < 0 or n > MAX_SAFE_INTEGER:
            raise ValueError(f"a uint64 is 0..{MAX_SAFE_INTEGER} here, got {n}")
        self._buffer += _U64.pack(n)
        return self

    def zigzag_int(self, n: int) -> Writer:
        """``c.int``: zig-zag, then ``uint``."""
        return self.uint(2 * n if n >= 0 else -2 * n - 1)

    def boolean(self, value: bool) -> Writer:
        self._buffer.append(1 if value else 0)
        return self

    def fixed(self, data: bytes, size: int) -> Writer:
        """``c.fixed(n)`` (``fixed32``, ``fixed64``): exactly ``size`` raw bytes."""
        if len(data) != size:
            raise ValueError(f"expected exactly {size} bytes, got {len(data)}")
        self._buffer += data
        return self

    def raw(self, data: bytes | bytearray | memoryview) -> Writer:
        """``c.raw``: bytes with no length (the rest of the message)."""
        self._buffer += data
        return self

    def buffer(self, data: bytes | bytearray | memoryview | None) -> Writer:
        """``c.buffer``: ``uint`` length, then the bytes; ``None`` is written as length 0."""
        if data is None:
            self._buffer.append(0)
            return self
        self.uint(len(data))
        self._buffer += data
        return self

    def string(self, text: str) -> Writer:
        """``c.string``: ``uint`` byte length, then UTF-8."""
        return self.buffer(text.encode("utf-8"))

    def ipv4(self, host: str) -> Writer:
        self._buffer += _packed_ipv4(host)
        return self

    def ipv4_address(self, address: tuple[str, int]) -> Writer:
        host, port = address
        self._buffer += _packed_ipv4(host)
        return self.uint16(port)

    def ipv6_address(self, address: tuple[str, int]) -> Writer:
        host, port = address
        self._buffer += ipaddress.IPv6Address(host).packed
        return self.uint16(port)

    def array(self, items: Sequence[T], encode_item: Callable[[Writer, T], object]) -> Writer:
        """``c.array(enc)``: ``uint`` count, then each item."""
        self.uint(len(items))
        for item in items:
            encode_item(self, item)
        return self

    def ipv4_addresses(self, addresses: Iterable[tuple[str, int]]) -> Writer:
        """``c.array(ipv4Address)``, the most common array on the DHT wire."""
        items = list(addresses)
        self.uint(len(items))
        for address in items:
            self.ipv4_address(address)
        return self


class Reader:
    """Reads compact-encoded fields from the front of a buffer, never past its end."""

    __slots__ = ("_end", "_view", "offset")

    def __init__(self, data: bytes | bytearray | memoryview, offset: int = 0) -> None:
        self._view = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        self._end = len(self._view)
        self.offset = offset

    @property
    def remaining(self) -> int:
        return self._end - self.offset

    def at_end(self) -> bool:
        return self.offset >= self._end

    def finish(self) -> None:
        """Raise unless every byte was read: trailing bytes are refused, not ignored."""
        if self.offset != self._end:
            raise CompactDecodeError(f"{self._end - self.offset} unexpected trailing bytes")

    def _take(self, size: int) -> bytes:
        start = self.offset
        end = start + size
        if end > self._end:
            raise CompactDecodeError(
                f"truncated: needed {size} bytes at offset {start}, {self._end - start} left"
            )
        self.offset = end
        return bytes(self._view[start:end])

    def uint8(self) -> int:
        if self.offset >= self._end:
            raise CompactDecodeError(f"truncated: needed 1 byte at offset {self.offset}")
        value = self._view[self.offset]
        self.offset += 1
        return value

    def uint16(self) -> int:
        value: int = _U16.unpack(self._take(2))[0]
        return value

    def uint24(self) -> int:
        return int.from_bytes(self._take(3), "little")

    def uint32(self) -> int:
        value: int = _U32.unpack(self._take(4))[0]
        return value

    def uint64(self) -> int:
        value: int = _U64.unpack(self._take(8))[0]
        if value > MAX_SAFE_INTEGER:
            raise CompactDecodeError(f"a uint64 of {value} is beyond the safe integer range")
        return value

    def uint(self) -> int:
        """``c.uint``, in its shortest form only."""
        first = self.uint8()
        if first <= 0xFC:
            return first
        if first == 0xFD:
            value = self.uint16()
            if value <= 0xFC:
                raise CompactDecodeError(f"non-canonical uint {value} in 3 bytes")
        elif first == 0xFE:
            value = self.uint32()
            if value <= 0xFFFF:
                raise CompactDecodeError(f"non-canonical uint {value} in 5 bytes")
        else:
            value = self.uint64()
            if value <= 0xFFFFFFFF:
                raise CompactDecodeError(f"non-canonical uint {value} in 9 bytes")
        return value

    def bounded_uint(self, maximum: int, what: str = "value") -> int:
        """A ``uint`` that must not exceed ``maximum`` (flags, enums, counts)."""
        value = self.uint()
        if value > maximum:
            raise CompactDecodeError(f"{what} {value} is above its maximum {maximum}")
        return value

    def zigzag_int(self) -> int:
        """``c.int``: zig-zag over ``uint``."""
        value = self.uint()
        return value >> 1 if value & 1 == 0 else -((value + 1) >> 1)

    def boolean(self) -> bool:
        """``c.bool``: JavaScript reads any byte, true only for 1; we refuse all but 0 and 1."""
        value = self.uint8()
        if value > 1:
            raise CompactDecodeError(f"a bool is 0 or 1, got {value}")
        return value == 1

    def fixed(self, size: int) -> bytes:
        return self._take(size)

    def raw(self) -> bytes:
        """The rest of the buffer."""
        return self._take(self._end - self.offset)

    def buffer(self, max_size: int) -> bytes:
        """``c.buffer`` of at most ``max_size`` bytes (length 0 reads as ``b""``)."""
        size = self.uint()
        if size > max_size:
            raise CompactDecodeError(f"a buffer of {size} bytes is above its maximum {max_size}")
        return self._take(size)

    def optional_buffer(self, max_size: int) -> bytes | None:
        """protomux's ``optionalBuffer``: length 0 is ``None``."""
        data = self.buffer(max_size)
        return data if data else None

    def string(self, max_size: int) -> str:
        data = self.buffer(max_size)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CompactDecodeError(f"a string is not valid UTF-8: {exc.reason}") from None

    def ipv4(self) -> str:
        return ".".join(map(str, self._take(4)))

    def ipv4_address(self) -> IPv4Address:
        b = self._take(6)
        return IPv4Address(f"{b[0]}.{b[1]}.{b[2]}.{b[3]}", b[4] | b[5] << 8)

    def ipv6_address(self) -> IPv6Address:
        host = str(ipaddress.IPv6Address(self._take(16)))
        return IPv6Address(host, self.uint16())

    def array(self, decode_item: Callable[[Reader], T], max_length: int) -> list[T]:
        """``c.array(enc)`` of at most ``max_length`` items."""
        count = self.uint()
        if count > max_length:
            raise CompactDecodeError(f"an array of {count} items is above its maximum {max_length}")
        return [decode_item(self) for _ in range(count)]

    def ipv4_addresses(self, max_length: int) -> list[IPv4Address]:
        count = self.uint()
        if count > max_length:
            raise CompactDecodeError(f"{count} addresses are above the maximum {max_length}")
        if self.offset + 6 * count > self._end:
            raise CompactDecodeError(f"truncated: {count} addresses need {6 * count} bytes")
        # one slice for the whole array: every reply carries up to 20 of these
        b = self._take(6 * count)
        return [
            IPv4Address(f"{b[i]}.{b[i + 1]}.{b[i + 2]}.{b[i + 3]}", b[i + 4] | b[i + 5] << 8)
            for i in range(0, 6 * count, 6)
        ]
