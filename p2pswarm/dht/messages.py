"""The codec of every DHT datagram (sans-IO: bytes in, typed messages out, and back).

Layouts are fixed and ``struct``-based, with a version byte first so the format can
change without guessing. Every field is bounded and the whole datagram must be consumed:
trailing bytes, unknown flag bits, unknown commands and over-long lists are all
:class:`~p2pswarm.errors.MessageDecodeError`, because a datagram is hostile until proven
otherwise. Records travel as opaque, length-prefixed blobs here; their own strict decoder
and signature check live in :mod:`p2pswarm.dht.records`.

Request::

    version u8 | command u8 | flags u8 | rid u32 | [node id 20] | [token 32] | body
    | [padding: u16 length, that many zero bytes]

Response (the command with the high bit set)::

    version u8 | command|0x80 u8 | flags u8 | rid u32 | to (address) | [node id 20]
    | status u8 | [token 32] | n u8 | n x (node id 20, address)
    | m u8 | m x (observed host, u16 length, record)

``to`` is the requester's address as the responder saw it (dht-rpc's ``to``): the raw
material of NAT discovery. A node id is present only when the sender is a persistent node
that wants to be in routing tables; ephemeral nodes leave it out.

Two fields exist to bound reflection (see :mod:`.amplification`): a query may carry the
round-trip token the responder gave it earlier (proof that it owns its source address) or
zero padding (so the request is large enough to pay for its reply), and a reply that left
records out for lack of either says so with its *truncated* flag.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import struct
from dataclasses import dataclass
from typing import Final

from ..errors import MessageDecodeError

__all__ = (
    "MAX_DATAGRAM_SIZE",
    "MAX_NODES_PER_REPLY",
    "MAX_PADDING",
    "MAX_RECORDS_PER_REPLY",
    "NODE_ID_SIZE",
    "QUERY_COMMANDS",
    "TOKEN_SIZE",
    "VERSION",
    "BoundedReader",
    "Command",
    "NodeContact",
    "Request",
    "Response",
    "Status",
    "decode",
    "decode_host",
    "encode_host",
)

#: 2: query tokens, request padding and the truncated flag.
VERSION: Final = 2
NODE_ID_SIZE: Final = 20
TOKEN_SIZE: Final = 32
KEY_SIZE: Final = 32
#: Larger datagrams are refused before any parsing. A full reply (20 records with their
#: signatures and 20 contacts) stays well below this.
MAX_DATAGRAM_SIZE: Final = 8192
MAX_NODES_PER_REPLY: Final = 20
MAX_RECORDS_PER_REPLY: Final = 20
#: An encoded record (see records.py) never exceeds this.
MAX_RECORD_SIZE: Final = 512

_RESPONSE_BIT: Final = 0x80
_FLAG_HAS_ID: Final = 0x01
_FLAG_HAS_TOKEN: Final = 0x02
_FLAG_PADDED: Final = 0x04
_FLAG_TRUNCATED: Final = 0x04
_REQUEST_FLAGS: Final = _FLAG_HAS_ID | _FLAG_HAS_TOKEN | _FLAG_PADDED
_RESPONSE_FLAGS: Final = _FLAG_HAS_ID | _FLAG_HAS_TOKEN | _FLAG_TRUNCATED
#: Padding never needs to make a request larger than this.
MAX_PADDING: Final = 2048
_HEADER = struct.Struct("!BBBI")
_U8 = struct.Struct("!B")
_U16 = struct.Struct("!H")
_CONTACT_V4 = struct.Struct("!20sB4sH")
_FAMILY_V4: Final = 4
_FAMILY_V6: Final = 6


class Command(enum.IntEnum):
    """What a request asks for; its response carries the same command."""

    PING = 0
    FIND_NODE = 1
    LOOKUP = 2
    FIND_PEER = 3
    ANNOUNCE = 4
    UNANNOUNCE = 5


#: The commands answered with contacts (and, from a persistent node, a token): a requester
#: pays for their replies with padding or a token, and a responder may truncate them.
QUERY_COMMANDS: Final = frozenset(
    {Command.PING, Command.FIND_NODE, Command.LOOKUP, Command.FIND_PEER}
)


class Status(enum.IntEnum):
    """The outcome a response reports. Queries always answer OK."""

    OK = 0
    BAD_TOKEN = 1
    INVALID_RECORD = 2
    NOT_STORING = 3
    ADDRESS_MISMATCH = 4
    EXPIRED = 5
    STALE_SEQ = 6


#: Which body each request command carries: a fixed-size key, or a token plus a blob.
_KEY_SIZES: Final = {
    Command.PING: 0,
    Command.FIND_NODE: NODE_ID_SIZE,
    Command.LOOKUP: KEY_SIZE,
    Command.FIND_PEER: KEY_SIZE,
}
_BLOB_COMMANDS: Final = frozenset({Command.ANNOUNCE, Command.UNANNOUNCE})


@dataclass(frozen=True, slots=True)
class NodeContact:
    """A DHT node as one node tells another about it: its id and UDP address."""

    node_id: bytes
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Request:
    """A request datagram.

    ``key`` is the target id (FIND_NODE), the topic (LOOKUP) or the public key
    (FIND_PEER); ``payload`` (the encoded record or unannounce) belongs to ANNOUNCE and
    UNANNOUNCE, which always carry a ``token``; other requests may (empty: none).
    ``padding`` zero bytes go at the end.
    """

    command: Command
    rid: int
    node_id: bytes | None = None
    key: bytes = b""
    token: bytes = b""
    payload: bytes = b""
    padding: int = 0

    def encode(self, pad_to: int = 0) -> bytes:
        """The datagram; with ``pad_to``, zero-padded up to that size if it is smaller
        (overriding ``padding``)."""
        blob_command = self.command in _BLOB_COMMANDS
        query_token = bool(self.token) and not blob_command
        flags = (
            (_FLAG_HAS_ID if self.node_id is not None else 0)
            | (_FLAG_HAS_TOKEN if query_token else 0)
            | (_FLAG_PADDED if self.padding else 0)
        )
        parts = [_HEADER.pack(VERSION, self.command, flags, self.rid)]
        if self.node_id is not None:
            parts.append(_exact(self.node_id, NODE_ID_SIZE, "node id"))
        if blob_command:
            parts.append(_exact(self.token, TOKEN_SIZE, "token"))
            parts.append(_blob(self.payload))
        else:
            if query_token:
                parts.append(_exact(self.token, TOKEN_SIZE, "token"))
            parts.append(_exact(self.key, _KEY_SIZES[self.command], "key"))
        padding = self.padding
        if pad_to:
            padding = max(0, pad_to - sum(map(len, parts)) - _U16.size)
            if padding and not self.padding:
                parts[0] = _HEADER.pack(VERSION, self.command, flags | _FLAG_PADDED, self.rid)
            elif self.padding and not padding:
                parts[0] = _HEADER.pack(VERSION, self.command, flags & ~_FLAG_PADDED, self.rid)
        if padding:
            if not 0 < padding <= MAX_PADDING:
                raise ValueError(f"padding must be 0..{MAX_PADDING} bytes")
            parts.append(_U16.pack(padding) + bytes(padding))
        return _finish(parts)


@dataclass(frozen=True, slots=True)
class Response:
    """A response datagram.

    ``to`` is the requester's (host, port) as the responder saw it. ``records`` pairs the
    IP the storing node observed for each announcer with the announcer's signed record.
    """

    command: Command
    rid: int
    to: tuple[str, int]
    node_id: bytes | None = None
    status: Status = Status.OK
    token: bytes | None = None
    nodes: tuple[NodeContact, ...] = ()
    records: tuple[tuple[str, bytes], ...] = ()
    #: Records were left out: ask again with the token to get them all.
    truncated: bool = False

    def encode(self) -> bytes:
        flags = (
            (_FLAG_HAS_ID if self.node_id is not None else 0)
            | (_FLAG_HAS_TOKEN if self.token is not None else 0)
            | (_FLAG_TRUNCATED if self.truncated else 0)
        )
        parts = [_HEADER.pack(VERSION, self.command | _RESPONSE_BIT, flags, self.rid)]
        parts.append(encode_address(*self.to))
        if self.node_id is not None:
            parts.append(_exact(self.node_id, NODE_ID_SIZE, "node id"))
        parts.append(_U8.pack(self.status))
        if self.token is not None:
            parts.append(_exact(self.token, TOKEN_SIZE, "token"))
        if len(self.nodes) > MAX_NODES_PER_REPLY:
            raise ValueError(f"at most {MAX_NODES_PER_REPLY} nodes per reply")
        parts.append(_U8.pack(len(self.nodes)))
        parts.extend(map(_encode_contact, self.nodes))
        if len(self.records) > MAX_RECORDS_PER_REPLY:
            raise ValueError(f"at most {MAX_RECORDS_PER_REPLY} records per reply")
        parts.append(_U8.pack(len(self.records)))
        for host, record in self.records:
            parts.append(encode_host(host))
            parts.append(_blob(record))
        return _finish(parts)


@functools.lru_cache(maxsize=4096)
def _encode_contact(contact: NodeContact) -> bytes:
    # Cached: a node hands out the same few contacts in reply after reply.
    return _exact(contact.node_id, NODE_ID_SIZE, "node id") + encode_address(
        contact.host, contact.port
    )


def _exact(value: bytes, size: int, what: str) -> bytes:
    if len(value) != size:
        raise ValueError(f"{what} must be {size} bytes, got {len(value)}")
    return value


def _blob(value: bytes) -> bytes:
    if len(value) > MAX_RECORD_SIZE:
        raise ValueError(f"record blob larger than {MAX_RECORD_SIZE} bytes")
    return _U16.pack(len(value)) + value


def _finish(parts: list[bytes]) -> bytes:
    data = b"".join(parts)
    if len(data) > MAX_DATAGRAM_SIZE:
        raise ValueError(f"datagram larger than {MAX_DATAGRAM_SIZE} bytes")
    return data


@functools.lru_cache(maxsize=4096)
def encode_host(host: str) -> bytes:
    """A family byte and the packed IP. Only IP literals: DHT messages never carry names.

    Cached: a node talks to the same few hosts over and over.
    """
    ip = ipaddress.ip_address(host)
    if ip.version == 4:
        return _U8.pack(_FAMILY_V4) + ip.packed
    return _U8.pack(_FAMILY_V6) + ip.packed


def encode_address(host: str, port: int) -> bytes:
    """A host (see :func:`encode_host`) and a big-endian u16 port."""
    return encode_host(host) + _U16.pack(port)


@functools.lru_cache(maxsize=4096)
def _ip_text(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


class BoundedReader:
    """A bounds-checked cursor: every read past the end is a decode error, never an IndexError."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise MessageDecodeError("truncated datagram")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        value: int = self.take(1)[0]
        return value

    def u16(self) -> int:
        value: int = _U16.unpack(self.take(2))[0]
        return value

    def host(self) -> str:
        family = self.u8()
        if family == _FAMILY_V4:
            return _ip_text(self.take(4))
        if family == _FAMILY_V6:
            return _ip_text(self.take(16))
        raise MessageDecodeError(f"unknown address family {family}")

    def address(self) -> tuple[str, int]:
        host = self.host()
        return host, self.u16()

    def contact(self) -> NodeContact:
        data, pos = self.data, self.pos
        if len(data) >= pos + _CONTACT_V4.size and data[pos + NODE_ID_SIZE] == _FAMILY_V4:
            # The common case in one unpack: 20-byte id, IPv4, port.
            contact_id, _, packed, port = _CONTACT_V4.unpack_from(data, pos)
            self.pos = pos + _CONTACT_V4.size
            host = _ip_text(packed)
        else:
            contact_id = self.take(NODE_ID_SIZE)
            host, port = self.address()
        if port == 0:
            raise MessageDecodeError("node contact with port 0")
        return NodeContact(contact_id, host, port)

    def blob(self) -> bytes:
        size = self.u16()
        if size > MAX_RECORD_SIZE:
            raise MessageDecodeError(f"record blob of {size} bytes exceeds {MAX_RECORD_SIZE}")
        return self.take(size)

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise MessageDecodeError(f"{len(self.data) - self.pos} trailing bytes")


def decode_host(data: bytes) -> str:
    """Decode exactly one :func:`encode_host` value."""
    reader = BoundedReader(data)
    host = reader.host()
    reader.finish()
    return host


def decode(data: bytes) -> Request | Response:
    """Decode one datagram strictly, or raise :class:`MessageDecodeError` saying why not."""
    if len(data) > MAX_DATAGRAM_SIZE:
        raise MessageDecodeError(f"datagram of {len(data)} bytes exceeds {MAX_DATAGRAM_SIZE}")
    if len(data) < _HEADER.size:
        raise MessageDecodeError("truncated datagram header")
    version, raw_command, flags, rid = _HEADER.unpack_from(data)
    if version != VERSION:
        raise MessageDecodeError(f"unsupported version {version}")
    is_response = bool(raw_command & _RESPONSE_BIT)
    try:
        command = Command(raw_command & ~_RESPONSE_BIT)
    except ValueError:
        raise MessageDecodeError(f"unknown command {raw_command & ~_RESPONSE_BIT}") from None
    reader = BoundedReader(data)
    reader.pos = _HEADER.size
    if is_response:
        return _decode_response(reader, command, flags, rid)
    return _decode_request(reader, command, flags, rid)


def _decode_request(reader: BoundedReader, command: Command, flags: int, rid: int) -> Request:
    if flags & ~_REQUEST_FLAGS:
        raise MessageDecodeError(f"unknown request flags {flags:#x}")
    node_id = reader.take(NODE_ID_SIZE) if flags & _FLAG_HAS_ID else None
    if command in _BLOB_COMMANDS:
        if flags & _FLAG_HAS_TOKEN:
            raise MessageDecodeError("the token of an announce is in its body")
        token = reader.take(TOKEN_SIZE)
        payload = reader.blob()
        key = b""
    else:
        token = reader.take(TOKEN_SIZE) if flags & _FLAG_HAS_TOKEN else b""
        key = reader.take(_KEY_SIZES[command])
        payload = b""
    padding = _padding(reader) if flags & _FLAG_PADDED else 0
    reader.finish()
    return Request(command, rid, node_id, key, token, payload, padding)


def _padding(reader: BoundedReader) -> int:
    size = reader.u16()
    if not 0 < size <= MAX_PADDING:
        raise MessageDecodeError(f"padding of {size} bytes (1..{MAX_PADDING})")
    if reader.take(size).count(0) != size:  # count() runs in C; any() would not
        raise MessageDecodeError("padding must be zero bytes")
    return size


def _decode_response(reader: BoundedReader, command: Command, flags: int, rid: int) -> Response:
    if flags & ~_RESPONSE_FLAGS:
        raise MessageDecodeError(f"unknown response flags {flags:#x}")
    to = reader.address()
    node_id = reader.take(NODE_ID_SIZE) if flags & _FLAG_HAS_ID else None
    raw_status = reader.u8()
    try:
        status = Status(raw_status)
    except ValueError:
        raise MessageDecodeError(f"unknown status {raw_status}") from None
    token = reader.take(TOKEN_SIZE) if flags & _FLAG_HAS_TOKEN else None
    node_count = reader.u8()
    if node_count > MAX_NODES_PER_REPLY:
        raise MessageDecodeError(f"{node_count} nodes in one reply (max {MAX_NODES_PER_REPLY})")
    nodes = [reader.contact() for _ in range(node_count)]
    record_count = reader.u8()
    if record_count > MAX_RECORDS_PER_REPLY:
        raise MessageDecodeError(
            f"{record_count} records in one reply (max {MAX_RECORDS_PER_REPLY})"
        )
    records = []
    for _ in range(record_count):
        host = reader.host()
        records.append((host, reader.blob()))
    reader.finish()
    truncated = bool(flags & _FLAG_TRUNCATED)
    return Response(
        command, rid, to, node_id, status, token, tuple(nodes), tuple(records), truncated
    )
