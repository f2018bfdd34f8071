"""Codecs of channel messages and handshakes: how a value becomes a message body and back.

A codec is any object with ``encode(value) -> bytes`` and ``decode(data) -> value``
(:class:`Codec`). ``decode`` gets hostile bytes: it must be bounded and strict and raise
:class:`~p2pswarm.errors.CodecError` (or :class:`~p2pswarm.errors.CompactDecodeError`,
which the Mux treats the same) for anything malformed; the Mux then drops the connection,
as JS protomux destroys its stream when an encoding throws.

Built in: :data:`RAW` (bytes as they are, JS ``c.raw``, the default), :class:`JSONCodec`
(UTF-8 JSON, bounded in size and depth), :class:`CompactCodec` (a compact-encoding layout
written with :class:`~p2pswarm.protocol.compact.Writer` / read with
:class:`~p2pswarm.protocol.compact.Reader`; this is how JS messages such as blind-relay's
``pair`` are matched byte for byte).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final, Generic, Protocol, TypeVar

from ..errors import CodecError
from ..protocol.compact import Reader, Writer

__all__ = (
    "JSON",
    "RAW",
    "STRING",
    "UINT",
    "Codec",
    "CompactCodec",
    "JSONCodec",
    "RawCodec",
)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: Default bound of a JSON message (bytes) and of its nesting.
DEFAULT_JSON_MAX_SIZE: Final = 1024 * 1024
DEFAULT_JSON_MAX_DEPTH: Final = 64


class Codec(Protocol[T]):
    """What a channel needs to carry values of type ``T``."""

    def encode(self, value: T) -> bytes: ...

    def decode(self, data: bytes) -> T: ...


class RawCodec:
    """Bytes as they are (JS ``c.raw``): the whole message body."""

    def encode(self, value: bytes) -> bytes:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"the raw codec carries bytes, not {type(value).__name__}")
        return bytes(value)

    def decode(self, data: bytes) -> bytes:
        return data


class JSONCodec:
    """UTF-8 JSON (what JS ``c.json`` writes, without its length prefix: the message body
    is the document), at most ``max_size`` bytes and ``max_depth`` levels deep."""

    def __init__(
        self, *, max_size: int = DEFAULT_JSON_MAX_SIZE, max_depth: int = DEFAULT_JSON_MAX_DEPTH
    ) -> None:
        self.max_size = max_size
        self.max_depth = max_depth

    def encode(self, value: Any) -> bytes:
        data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        if len(data) > self.max_size:
            raise ValueError(f"a JSON message of {len(data)} bytes is above {self.max_size}")
        return data

    def decode(self, data: bytes) -> Any:
        if len(data) > self.max_size:
            raise CodecError(f"a JSON message of {len(data)} bytes is above {self.max_size}")
        depth = 0
        deepest = 0
        # Nesting is counted before parsing: the parser's recursion must never be the bound.
        in_string = False
        escaped = False
        for byte in data:
            if in_string:
                if escaped:
                    escaped = False
                elif byte == 0x5C:
                    escaped = True
                elif byte == 0x22:
                    in_string = False
            elif byte == 0x22:
                in_string = True
            elif byte in (0x5B, 0x7B):
                depth += 1
                deepest = max(deepest, depth)
            elif byte in (0x5D, 0x7D):
                depth -= 1
        if deepest > self.max_depth:
            raise CodecError(f"JSON nested {deepest} deep, above {self.max_depth}")
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise CodecError(f"malformed JSON: {exc}") from None


class CompactCodec(Generic[T]):
    """A compact-encoding layout: ``write(writer, value)`` and ``read(reader) -> value``.

    With ``strict`` (the default) trailing bytes are refused; pass ``strict=False`` where
    the JS side may append fields in later versions (JS decoders ignore them).
    """

    def __init__(
        self,
        write: Callable[[Writer, T], object],
        read: Callable[[Reader], T],
        *,
        strict: bool = True,
    ) -> None:
        self._write = write
        self._read = read
        self.strict = strict

    def encode(self, value: T) -> bytes:
        writer = Writer()
        self._write(writer, value)
        return writer.getvalue()

    def decode(self, data: bytes) -> T:
        reader = Reader(data)
        value = self._read(reader)
        if self.strict:
            reader.finish()
        return value


def _write_string(writer: Writer, value: str) -> None:
    writer.string(value)


def _read_string(reader: Reader) -> str:
    return reader.string(DEFAULT_JSON_MAX_SIZE)


def _write_uint(writer: Writer, value: int) -> None:
    writer.uint(value)


def _read_uint(reader: Reader) -> int:
    return reader.uint()


RAW: Final = RawCodec()
JSON: Final = JSONCodec()
#: JS ``c.string`` (at most 1 MiB here).
STRING: Final[CompactCodec[str]] = CompactCodec(_write_string, _read_string)
#: JS ``c.uint``.
UINT: Final[CompactCodec[int]] = CompactCodec(_write_uint, _read_uint)
