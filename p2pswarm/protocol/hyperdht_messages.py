"""HyperDHT's command numbers and the values its DHT commands carry (``hyperdht/lib/messages.js``).

dht-rpc carries an opaque ``value`` in each request and reply; HyperDHT lays its records out
in it with compact-encoding. This module writes the same bytes as the JS encoders and reads
them strictly: bounded arrays and buffers, shortest-form integers, no trailing bytes. Every
decoding failure raises :class:`~p2pswarm.errors.CompactDecodeError`. Unknown flag bits are
ignored, as JavaScript ignores them.

Sans-IO: bytes in, named tuples out. Signatures and namespaces live in
:mod:`p2pswarm.hyperdht.records`; what a storing node does with a decoded message lives in
:mod:`p2pswarm.hyperdht.serving`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final, NamedTuple

from .compact import IPv4Address, Reader, Writer

__all__ = (
    "MAX_LOOKUP_PEERS",
    "MAX_MUTABLE_VALUE_SIZE",
    "MAX_RELAY_ADDRESSES",
    "MAX_STORED_RELAY_ADDRESSES",
    "MAX_VALUE_SIZE",
    "Announce",
    "Command",
    "LookupReply",
    "MutableGetResponse",
    "MutablePutRequest",
    "Peer",
    "RemoteError",
    "decode_announce",
    "decode_lookup_reply",
    "decode_mutable_get_request",
    "decode_mutable_get_response",
    "decode_mutable_put_request",
    "decode_peer",
    "encode_announce",
    "encode_lookup_reply",
    "encode_mutable_get_request",
    "encode_mutable_get_response",
    "encode_mutable_put_request",
    "encode_mutable_signable",
    "encode_peer",
)


class Command(IntEnum):
    """HyperDHT's command numbers (``lib/constants.js COMMANDS``), sent with the internal flag
    clear; dht-rpc's own commands (PING, FIND_NODE, ...) are a separate space."""

    PEER_HANDSHAKE = 0
    PEER_HOLEPUNCH = 1
    FIND_PEER = 2
    LOOKUP = 3
    ANNOUNCE = 4
    UNANNOUNCE = 5
    MUTABLE_PUT = 6
    MUTABLE_GET = 7
    IMMUTABLE_PUT = 8
    IMMUTABLE_GET = 9
    PLUGIN = 10


class RemoteError(IntEnum):
    """Error codes in a dht-rpc reply: dht-rpc's (1, 2) and HyperDHT's (16, 17)."""

    UNKNOWN_COMMAND = 1
    INVALID_TOKEN = 2
    SEQ_REUSED = 16
    SEQ_TOO_LOW = 17


#: A storing node keeps at most this many relay addresses of a record (``persistent.js``).
MAX_STORED_RELAY_ADDRESSES: Final = 3
#: What a decoder accepts before truncation: JS accepts any count that fits a datagram and
#: truncates to 3; more than this is only ever an attack on the decoder.
MAX_RELAY_ADDRESSES: Final = 1024
#: The largest value in one request or reply. JS sets no limit of its own: a value must fit
#: one UDP datagram (65,507 bytes) with the largest dht-rpc header around it (a reply with
#: id, token and 20 closer nodes: 198 bytes) and, for a mutable value, its seq, length and
#: signature (76 bytes). Rounded down to leave room.
MAX_VALUE_SIZE: Final = 65_000
#: A mutable value also carries its public key, seq and signature in a put request.
MAX_MUTABLE_VALUE_SIZE: Final = MAX_VALUE_SIZE - 128
#: Records in a LOOKUP reply: JS sends at most 20; a decoder takes a few more, not thousands.
MAX_LOOKUP_PEERS: Final = 64

_PEER_FLAG: Final = 1
_REFRESH_FLAG: Final = 2
_SIGNATURE_FLAG: Final = 4
_BUMP_FLAG: Final = 8


class Peer(NamedTuple):
    """``messages.peer``: a public key and the addresses of nodes that relay to it."""

    public_key: bytes
    relay_addresses: tuple[IPv4Address, ...] = ()


class Announce(NamedTuple):
    """``messages.announce``: the value of ANNOUNCE and UNANNOUNCE requests.

    ``refresh`` is a 32-byte hash-chain link that lets a later refresh-only announce (no
    ``peer``) extend the record; ``bump`` a millisecond timestamp ordering announces.
    """

    peer: Peer | None = None
    refresh: bytes | None = None
    signature: bytes | None = None
    bump: int = 0


class LookupReply(NamedTuple):
    """``messages.lookupRawReply`` decoded: the records a node holds for a topic."""

    peers: tuple[Peer, ...]
    bump: int = 0


class MutablePutRequest(NamedTuple):
    """``messages.mutablePutRequest``: a signed value stored under ``H(public_key)``."""

    public_key: bytes
    seq: int
    value: bytes
    signature: bytes


class MutableGetResponse(NamedTuple):
    """``messages.mutableGetResponse``: what a node stores and returns for a mutable value."""

    seq: int
    value: bytes
    signature: bytes


def _write_peer(w: Writer, peer: Peer) -> None:
    w.fixed(peer.public_key, 32)
    w.ipv4_addresses(peer.relay_addresses)


def _read_peer(r: Reader) -> Peer:
    public_key = r.fixed(32)
    return Peer(public_key, tuple(r.ipv4_addresses(MAX_RELAY_ADDRESSES)))


def encode_peer(peer: Peer) -> bytes:
    """The bytes of one ``peer``: also what a storing node keeps and what gets signed."""
    w = Writer()
    _write_peer(w, peer)
    return w.getvalue()


def decode_peer(data: bytes) -> Peer:
    """A FIND_PEER reply's value (or a stored record)."""
    r = Reader(data)
    peer = _read_peer(r)
    r.finish()
    return peer


def encode_announce(announce: Announce) -> bytes:
    flags = (
        (_PEER_FLAG if announce.peer is not None else 0)
        | (_REFRESH_FLAG if announce.refresh is not None else 0)
        | (_SIGNATURE_FLAG if announce.signature is not None else 0)
        | (_BUMP_FLAG if announce.bump else 0)
    )
    w = Writer().uint(flags)
    if announce.peer is not None:
        _write_peer(w, announce.peer)
    if announce.refresh is not None:
        w.fixed(announce.refresh, 32)
    if announce.signature is not None:
        w.fixed(announce.signature, 64)
    if announce.bump:
        w.uint(announce.bump)
    return w.getvalue()


def decode_announce(data: bytes) -> Announce:
    r = Reader(data)
    flags = r.uint()
    peer = _read_peer(r) if flags & _PEER_FLAG else None
    refresh = r.fixed(32) if flags & _REFRESH_FLAG else None
    signature = r.fixed(64) if flags & _SIGNATURE_FLAG else None
    bump = r.uint() if flags & _BUMP_FLAG else 0
    r.finish()
    return Announce(peer, refresh, signature, bump)


def encode_lookup_reply(records: list[bytes] | tuple[bytes, ...], bump: int = 0) -> bytes:
    """``lookupRawReply``: already-encoded peer records, then the bump (always written)."""
    w = Writer().uint(len(records))
    for record in records:
        w.raw(record)
    return w.uint(bump).getvalue()


def decode_lookup_reply(data: bytes) -> LookupReply:
    r = Reader(data)
    peers = tuple(r.array(_read_peer, MAX_LOOKUP_PEERS))
    bump = r.uint() if not r.at_end() else 0
    r.finish()
    return LookupReply(peers, bump)


def encode_mutable_signable(seq: int, value: bytes) -> bytes:
    """``messages.mutableSignable``: the bytes whose hash a mutable signature covers."""
    return Writer().uint(seq).buffer(value).getvalue()


def encode_mutable_put_request(request: MutablePutRequest) -> bytes:
    w = Writer().fixed(request.public_key, 32).uint(request.seq).buffer(request.value)
    return w.fixed(request.signature, 64).getvalue()


def decode_mutable_put_request(data: bytes) -> MutablePutRequest:
    r = Reader(data)
    public_key = r.fixed(32)
    seq = r.uint()
    value = r.buffer(MAX_MUTABLE_VALUE_SIZE)
    signature = r.fixed(64)
    r.finish()
    return MutablePutRequest(public_key, seq, value, signature)


def encode_mutable_get_response(response: MutableGetResponse) -> bytes:
    w = Writer().uint(response.seq).buffer(response.value)
    return w.fixed(response.signature, 64).getvalue()


def decode_mutable_get_response(data: bytes) -> MutableGetResponse:
    r = Reader(data)
    seq = r.uint()
    value = r.buffer(MAX_MUTABLE_VALUE_SIZE)
    signature = r.fixed(64)
    r.finish()
    return MutableGetResponse(seq, value, signature)


def encode_mutable_get_request(seq: int) -> bytes:
    """A MUTABLE_GET value: the lowest ``seq`` the asker wants (``c.uint``)."""
    return Writer().uint(seq).getvalue()


def decode_mutable_get_request(data: bytes) -> int:
    r = Reader(data)
    seq = r.uint()
    r.finish()
    return seq
