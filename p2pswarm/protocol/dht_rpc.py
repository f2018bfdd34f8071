"""dht-rpc's datagram format (``dht-rpc/lib/io.js``), sans-IO: requests, responses, ids, tokens.

Every HyperDHT datagram is one of two messages, laid out with compact-encoding:

- request ``0x03`` · ``uint flags`` (1 id, 2 token, 4 internal, 8 target, 16 value) ·
  ``u16 tid`` · ``ipv4 to`` · [32 id] · [32 token] · ``uint command`` · [32 target] ·
  [buffer value];
- response ``0x13`` · ``uint flags`` (1 id, 2 token, 4 closerNodes, 8 error, 16 value) ·
  ``u16 tid`` · ``ipv4 to`` · [32 id] · [32 token] · [array(ipv4) closerNodes] · [uint error] ·
  [buffer value].

``to`` is the address the sender sees for the receiver (how a node learns its public address);
``id`` is the sender's node id, which must equal :func:`node_id` of the address the datagram
came from (the receiver checks; ids are bound to addresses, not chosen).

The decoder is stricter than JavaScript's where that costs no interop: unknown flag bits,
trailing bytes, more closer nodes than :data:`MAX_CLOSER_NODES` and anything larger than
:data:`MAX_DATAGRAM_SIZE` are refused with :class:`~p2pswarm.errors.DHTRPCDecodeError` (JS
never writes them). A zero-length ``value`` with its flag set reads as ``b""`` (JS's empty
buffer), distinct from an absent one (``None``).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import os
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from ..errors import CompactDecodeError, DHTRPCDecodeError
from .compact import IPv4Address, Reader, Writer

__all__ = (
    "ID_SIZE",
    "MAX_CLOSER_NODES",
    "MAX_DATAGRAM_SIZE",
    "REQUEST_ID",
    "RESPONSE_ID",
    "TOKEN_SIZE",
    "ErrorCode",
    "InternalCommand",
    "Request",
    "Response",
    "TokenSecrets",
    "decode",
    "decode_request",
    "decode_response",
    "encode_ipv4",
    "node_id",
    "peek_tid",
)

#: Type 0 (request) / 1 (response) in the high nibble, version 0b11 in the low one.
REQUEST_ID: Final = 0x03
RESPONSE_ID: Final = 0x13
ID_SIZE: Final = 32
TOKEN_SIZE: Final = 32
#: JS replies with at most k = 20 closest nodes; we accept a few more (a peer with a larger
#: k), never an unbounded list.
MAX_CLOSER_NODES: Final = 64
#: The largest datagram read: HyperDHT's biggest messages (a mutable put of a 1000-byte value
#: with its signature, a lookup reply with 20 peers) stay far below it.
MAX_DATAGRAM_SIZE: Final = 4096

_REQ_ID, _REQ_TOKEN, _REQ_INTERNAL, _REQ_TARGET, _REQ_VALUE = 1, 2, 4, 8, 16
_RES_ID, _RES_TOKEN, _RES_CLOSER, _RES_ERROR, _RES_VALUE = 1, 2, 4, 8, 16
_ALL_FLAGS: Final = 31
#: The largest command or error number we accept (JS uses < 32; ``uint`` could carry 2**53).
_MAX_CODE: Final = 0xFFFF


class InternalCommand(IntEnum):
    """dht-rpc's own commands (``lib/commands.js``): a request with the internal flag."""

    PING = 0
    PING_NAT = 1
    FIND_NODE = 2
    DOWN_HINT = 3
    DELAYED_PING = 4


class ErrorCode(IntEnum):
    """dht-rpc's reply errors (``lib/errors.js``); HyperDHT adds its own above these."""

    OK = 0
    UNKNOWN_COMMAND = 1
    INVALID_TOKEN = 2


@functools.lru_cache(maxsize=8192)
def _host_bytes(host: str) -> bytes:
    parts = host.split(".")
    if len(parts) == 4 and all(p.isdigit() and p.isascii() and len(p) <= 3 for p in parts):
        octets = [int(p) for p in parts]
        if max(octets) <= 255 and all(p == "0" or p[0] != "0" for p in parts):
            return bytes(octets)
    return ipaddress.IPv4Address(host).packed  # raises ValueError on anything else


@functools.lru_cache(maxsize=8192)
def encode_ipv4(host: str, port: int) -> bytes:
    """compact-encoding-net's 6-byte ``ipv4Address`` (4 address bytes, port u16 LE).

    Cached like :func:`node_id`: every reply encodes up to 20 closer nodes, mostly the
    same addresses again (errors are raised, never cached)."""
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} is out of range")
    return _host_bytes(host) + port.to_bytes(2, "little")


@functools.lru_cache(maxsize=8192)
def node_id(host: str, port: int) -> bytes:
    """A node's id: BLAKE2b-256 of its compact (host, port) (``lib/peer.js id``).

    Cached: every reply's closer nodes are hashed, mostly the same few hundred addresses.
    """
    return hashlib.blake2b(encode_ipv4(host, port), digest_size=32).digest()


@dataclass(frozen=True, slots=True)
class Request:
    """One dht-rpc request. ``to`` is where the sender believes the receiver is."""

    tid: int
    to: IPv4Address
    command: int
    internal: bool = False
    id: bytes | None = None
    token: bytes | None = None
    target: bytes | None = None
    value: bytes | None = None

    def encode(self) -> bytes:
        _check_fixed(self.id, ID_SIZE, "id")
        _check_fixed(self.token, TOKEN_SIZE, "token")
        _check_fixed(self.target, ID_SIZE, "target")
        flags = (
            (_REQ_ID if self.id is not None else 0)
            | (_REQ_TOKEN if self.token is not None else 0)
            | (_REQ_INTERNAL if self.internal else 0)
            | (_REQ_TARGET if self.target is not None else 0)
            | (_REQ_VALUE if self.value is not None else 0)
        )
        w = Writer().uint8(REQUEST_ID).uint(flags).uint16(self.tid).raw(encode_ipv4(*self.to))
        if self.id is not None:
            w.raw(self.id)
        if self.token is not None:
            w.raw(self.token)
        w.uint(self.command)
        if self.target is not None:
            w.raw(self.target)
        if self.value is not None:
            w.buffer(self.value)
        return w.getvalue()


@dataclass(frozen=True, slots=True)
class Response:
    """One dht-rpc response: ``to`` is the requester's address as the responder saw it."""

    tid: int
    to: IPv4Address
    id: bytes | None = None
    token: bytes | None = None
    closer_nodes: tuple[IPv4Address, ...] = field(default=())
    error: int = 0
    value: bytes | None = None

    def encode(self) -> bytes:
        _check_fixed(self.id, ID_SIZE, "id")
        _check_fixed(self.token, TOKEN_SIZE, "token")
        flags = (
            (_RES_ID if self.id is not None else 0)
            | (_RES_TOKEN if self.token is not None else 0)
            | (_RES_CLOSER if self.closer_nodes else 0)
            | (_RES_ERROR if self.error > 0 else 0)
            | (_RES_VALUE if self.value is not None else 0)
        )
        w = Writer().uint8(RESPONSE_ID).uint(flags).uint16(self.tid).raw(encode_ipv4(*self.to))
        if self.id is not None:
            w.raw(self.id)
        if self.token is not None:
            w.raw(self.token)
        if self.closer_nodes:
            w.uint(len(self.closer_nodes))
            for host, port in self.closer_nodes:
                w.raw(encode_ipv4(host, port))
        if self.error > 0:
            w.uint(self.error)
        if self.value is not None:
            w.buffer(self.value)
        return w.getvalue()


def _check_fixed(data: bytes | None, size: int, what: str) -> None:
    if data is not None and len(data) != size:
        raise ValueError(f"{what} must be {size} bytes, got {len(data)}")


def peek_tid(data: bytes) -> int | None:
    """The tid of a well-framed datagram without decoding it (None if too short to say).

    Lets the receive path drop replies nobody waits for before paying for a decode.
    """
    if len(data) < 4 or data[1] > 0xFC:
        return None
    return data[2] | data[3] << 8


def _header(data: bytes, expected: int) -> tuple[Reader, int, int, IPv4Address]:
    if len(data) > MAX_DATAGRAM_SIZE:
        raise DHTRPCDecodeError(f"a datagram of {len(data)} bytes is above {MAX_DATAGRAM_SIZE}")
    if not data or data[0] != expected:
        raise DHTRPCDecodeError(f"not a dht-rpc message of type {expected:#04x}")
    r = Reader(data, 1)
    flags = r.bounded_uint(_ALL_FLAGS, "flags")
    tid = r.uint16()
    to = r.ipv4_address()
    return r, flags, tid, to


def decode_request(data: bytes) -> Request:
    """Decode a request datagram, or raise :class:`DHTRPCDecodeError`."""
    try:
        r, flags, tid, to = _header(data, REQUEST_ID)
        id_ = r.fixed(ID_SIZE) if flags & _REQ_ID else None
        token = r.fixed(TOKEN_SIZE) if flags & _REQ_TOKEN else None
        command = r.bounded_uint(_MAX_CODE, "command")
        target = r.fixed(ID_SIZE) if flags & _REQ_TARGET else None
        value = r.buffer(MAX_DATAGRAM_SIZE) if flags & _REQ_VALUE else None
        r.finish()
    except CompactDecodeError as exc:
        raise DHTRPCDecodeError(f"malformed dht-rpc request: {exc}") from None
    internal = bool(flags & _REQ_INTERNAL)
    return Request(tid, to, command, internal, id_, token, target, value)


def decode_response(data: bytes) -> Response:
    """Decode a response datagram, or raise :class:`DHTRPCDecodeError`."""
    try:
        r, flags, tid, to = _header(data, RESPONSE_ID)
        id_ = r.fixed(ID_SIZE) if flags & _RES_ID else None
        token = r.fixed(TOKEN_SIZE) if flags & _RES_TOKEN else None
        closer = tuple(r.ipv4_addresses(MAX_CLOSER_NODES)) if flags & _RES_CLOSER else ()
        error = r.bounded_uint(_MAX_CODE, "error") if flags & _RES_ERROR else 0
        value = r.buffer(MAX_DATAGRAM_SIZE) if flags & _RES_VALUE else None
        r.finish()
    except CompactDecodeError as exc:
        raise DHTRPCDecodeError(f"malformed dht-rpc response: {exc}") from None
    return Response(tid, to, id_, token, closer, error, value)


def decode(data: bytes) -> Request | Response:
    """A request or a response, by the first byte."""
    if data[:1] == bytes([RESPONSE_ID]):
        return decode_response(data)
    return decode_request(data)


class TokenSecrets:
    """The round-trip tokens of ``io.js``: ``H(utf8(host), key=secret)``, two rotating secrets.

    A token proves the requester receives datagrams at its host (it read our earlier reply),
    so mutating commands can demand one. Replies carry the token of secret 1; a request's
    token is accepted under either secret. :meth:`rotate` (every 10 drain ticks, 7.5 s in
    JS) swaps the two and replaces the old one by its own hash, so a token lives 7.5-15 s.
    The port is not part of it, as in JS.
    """

    __slots__ = ("_secrets",)

    def __init__(self, first: bytes | None = None, second: bytes | None = None) -> None:
        self._secrets = [first or os.urandom(32), second or os.urandom(32)]

    def token(self, host: str, index: int = 1) -> bytes:
        return hashlib.blake2b(
            host.encode("utf-8"), digest_size=32, key=self._secrets[index]
        ).digest()

    def valid(self, host: str, token: bytes) -> bool:
        return hmac.compare_digest(token, self.token(host, 1)) or hmac.compare_digest(
            token, self.token(host, 0)
        )

    def rotate(self) -> None:
        old = self._secrets[0]
        self._secrets[0] = self._secrets[1]
        self._secrets[1] = hashlib.blake2b(old, digest_size=32).digest()
