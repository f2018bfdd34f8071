"""Signed announce records: the canonical bytes, the signature, the strict decoder.

A record says "this public key serves this topic on this port, until this time". It is
signed by the announcer over a domain-separated encoding of every field, so it cannot be
forged, altered, or replayed under another topic (the topic is inside the signature) or as
an unannounce (another domain). Storing nodes and the peers that look records up both
verify it: a lookup hands out only records whose signature checks.

The IP a peer is dialled at is *not* in the record. The storing node pairs the signed port
with the source IP it observed, so nobody can announce on behalf of someone else's host.
Extra addresses travel in a bounded, versioned list; kinds a node does not know are kept
in the signed bytes but skipped when read, so new kinds (relays, hole-punch hints) can be
added without breaking old nodes.

Record layout (all integers big-endian)::

    version u8 | kind u8 | topic 32 | public key 32 | seq u64 | expiry ms u64 | port u16
    | n u8 | n x (address kind u8, length u8, body) | signature 64

A ``PEER`` record (announced under the public key itself, for ``find_peer``) must carry
its own public key as its topic.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from dataclasses import dataclass
from typing import Final

from ..errors import InvalidRecordError, MessageDecodeError
from ..keys import KeyPair, verify
from ..peer_record import AddressKind, PeerAddress, PeerRecord
from .messages import BoundedReader, encode_address

__all__ = (
    "MAX_ADDRESSES",
    "AnnounceRecord",
    "RecordKind",
    "Unannounce",
    "create_record",
    "create_unannounce",
    "decode_record",
    "decode_unannounce",
    "target_for",
)

RECORD_VERSION: Final = 1
#: The announcer's address plus up to three contact nodes (HyperDHT's relayAddresses).
MAX_ADDRESSES: Final = 4
MAX_ADDRESS_BODY: Final = 32
ANNOUNCE_DOMAIN: Final = b"p2pswarm/dht/announce/1\x00"
UNANNOUNCE_DOMAIN: Final = b"p2pswarm/dht/unannounce/1\x00"
SIGNATURE_SIZE: Final = 64
_FIXED = struct.Struct("!BB32s32sQQHB")

#: Encodings whose signature was checked already, by domain: a lookup meets the same record
#: in the replies of many nodes (and, in one process, of many swarms), and an Ed25519
#: verification costs ~60 µs. Keyed by the exact bytes, so only an identical encoding skips
#: the check; only good signatures are remembered; oldest evicted first.
_VERIFIED: dict[tuple[bytes, bytes], None] = {}
_VERIFIED_MAX: Final = 4096


def _verified(domain: bytes, public_key: bytes, signed: bytes, signature: bytes) -> bool:
    """``verify(public_key, domain + signed, signature)``, remembering the good ones."""
    key = (domain, bytes(signed) + bytes(signature))
    if key in _VERIFIED:
        return True
    if not verify(public_key, domain + signed, signature):
        return False
    if len(_VERIFIED) >= _VERIFIED_MAX:
        del _VERIFIED[next(iter(_VERIFIED))]
    _VERIFIED[key] = None
    return True


_UNANNOUNCE = struct.Struct("!BB32s32sQ")
_ENTRY = struct.Struct("!BB")
_MAX_U64: Final = 2**64 - 1


class RecordKind(enum.IntEnum):
    """Whether a record is stored under a topic or under its announcer's public key."""

    TOPIC = 1
    PEER = 2


def target_for(key: bytes) -> bytes:
    """The 160-bit DHT id a topic (or, for ``find_peer``, a public key) is stored at."""
    return hashlib.blake2b(key, digest_size=20).digest()


@dataclass(frozen=True, slots=True)
class AnnounceRecord:
    """A decoded, signature-checked record. ``signed`` is the exact bytes that were signed."""

    kind: RecordKind
    topic: bytes
    public_key: bytes
    seq: int
    #: Absolute expiry, seconds since the epoch of the clock that made it.
    expiry: float
    port: int
    #: The address entries of kinds this version knows, in order.
    addresses: tuple[PeerAddress, ...]
    signed: bytes
    signature: bytes

    @property
    def target(self) -> bytes:
        return target_for(self.topic)

    def encode(self) -> bytes:
        return self.signed + self.signature

    def to_peer_record(self, observed_host: str) -> PeerRecord:
        """The dialler's view: the port at the IP the storing node saw, then extra addresses."""
        addresses: list[PeerAddress] = []
        if self.port:
            addresses.append(PeerAddress(observed_host, self.port, AddressKind.DIRECT))
        for address in self.addresses:
            if address not in addresses:
                addresses.append(address)
        return PeerRecord(
            public_key=self.public_key,
            addresses=tuple(addresses),
            topic=self.topic if self.kind is RecordKind.TOPIC else None,
            seq=self.seq,
        )


@dataclass(frozen=True, slots=True)
class Unannounce:
    """A signed request to drop every record of ``public_key`` under ``topic`` up to ``seq``."""

    kind: RecordKind
    topic: bytes
    public_key: bytes
    seq: int
    signed: bytes
    signature: bytes

    @property
    def target(self) -> bytes:
        return target_for(self.topic)

    def encode(self) -> bytes:
        return self.signed + self.signature


def _check_common(kind: RecordKind, topic: bytes, key_pair: KeyPair, seq: int) -> None:
    if len(topic) != 32:
        raise ValueError(f"topic must be 32 bytes, got {len(topic)}")
    if kind is RecordKind.PEER and topic != key_pair.public_key:
        raise ValueError("a PEER record is stored under its own public key")
    if not 0 <= seq <= _MAX_U64:
        raise ValueError("seq must fit in 64 bits")


def create_record(
    key_pair: KeyPair,
    topic: bytes,
    port: int,
    *,
    seq: int,
    expiry: float,
    kind: RecordKind = RecordKind.TOPIC,
    addresses: tuple[PeerAddress, ...] = (),
) -> AnnounceRecord:
    """Sign a record. ``expiry`` is absolute (seconds); ``port`` 0 means no direct address."""
    _check_common(kind, topic, key_pair, seq)
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port out of range: {port}")
    if len(addresses) > MAX_ADDRESSES:
        raise ValueError(f"at most {MAX_ADDRESSES} addresses per record")
    expiry_ms = int(expiry * 1000)
    if not 0 <= expiry_ms <= _MAX_U64:
        raise ValueError("expiry out of range")
    parts = [
        _FIXED.pack(
            RECORD_VERSION, kind, topic, key_pair.public_key, seq, expiry_ms, port, len(addresses)
        )
    ]
    for address in addresses:
        body = encode_address(address.host, address.port)
        parts.append(_ENTRY.pack(address.kind, len(body)) + body)
    signed = b"".join(parts)
    signature = key_pair.sign(ANNOUNCE_DOMAIN + signed)
    return AnnounceRecord(
        kind, topic, key_pair.public_key, seq, expiry_ms / 1000, port, addresses, signed, signature
    )


def _decode_address(kind_byte: int, body: bytes) -> PeerAddress | None:
    try:
        kind = AddressKind(kind_byte)
    except ValueError:
        return None  # a kind from a newer version: keep going without it
    reader = BoundedReader(body)
    try:
        host, port = reader.address()
        reader.finish()
    except MessageDecodeError as exc:
        raise InvalidRecordError(f"malformed {kind.name} address: {exc}") from None
    if port == 0:
        raise InvalidRecordError(f"{kind.name} address with port 0")
    return PeerAddress(host, port, kind)


def decode_record(data: bytes) -> AnnounceRecord:
    """Parse a record strictly and check its signature, or raise :class:`InvalidRecordError`.

    Expiry is not judged here: it depends on the reader's clock (see the storage).
    """
    if len(data) < _FIXED.size + SIGNATURE_SIZE:
        raise InvalidRecordError("truncated record")
    version, raw_kind, topic, public_key, seq, expiry_ms, port, count = _FIXED.unpack_from(data)
    if version != RECORD_VERSION:
        raise InvalidRecordError(f"unsupported record version {version}")
    try:
        kind = RecordKind(raw_kind)
    except ValueError:
        raise InvalidRecordError(f"unknown record kind {raw_kind}") from None
    if count > MAX_ADDRESSES:
        raise InvalidRecordError(f"{count} addresses (max {MAX_ADDRESSES})")
    pos = _FIXED.size
    addresses: list[PeerAddress] = []
    for _ in range(count):
        if pos + _ENTRY.size > len(data):
            raise InvalidRecordError("truncated address list")
        address_kind, size = _ENTRY.unpack_from(data, pos)
        pos += _ENTRY.size
        if size > MAX_ADDRESS_BODY or pos + size > len(data):
            raise InvalidRecordError("address entry out of bounds")
        address = _decode_address(address_kind, data[pos : pos + size])
        if address is not None:
            addresses.append(address)
        pos += size
    if len(data) - pos != SIGNATURE_SIZE:
        raise InvalidRecordError("record length does not match its address list")
    if kind is RecordKind.PEER and topic != public_key:
        raise InvalidRecordError("a PEER record must be stored under its own public key")
    signed, signature = data[:pos], data[pos:]
    if not _verified(ANNOUNCE_DOMAIN, public_key, signed, signature):
        raise InvalidRecordError("bad record signature")
    return AnnounceRecord(
        kind, topic, public_key, seq, expiry_ms / 1000, port, tuple(addresses), signed, signature
    )


def create_unannounce(
    key_pair: KeyPair, topic: bytes, *, seq: int, kind: RecordKind = RecordKind.TOPIC
) -> Unannounce:
    """Sign the removal of our records under ``topic`` with a sequence number up to ``seq``."""
    _check_common(kind, topic, key_pair, seq)
    signed = _UNANNOUNCE.pack(RECORD_VERSION, kind, topic, key_pair.public_key, seq)
    return Unannounce(
        kind, topic, key_pair.public_key, seq, signed, key_pair.sign(UNANNOUNCE_DOMAIN + signed)
    )


def decode_unannounce(data: bytes) -> Unannounce:
    """Parse an unannounce strictly and check its signature, or raise InvalidRecordError."""
    if len(data) != _UNANNOUNCE.size + SIGNATURE_SIZE:
        raise InvalidRecordError("unannounce has the wrong length")
    version, raw_kind, topic, public_key, seq = _UNANNOUNCE.unpack_from(data)
    if version != RECORD_VERSION:
        raise InvalidRecordError(f"unsupported unannounce version {version}")
    try:
        kind = RecordKind(raw_kind)
    except ValueError:
        raise InvalidRecordError(f"unknown record kind {raw_kind}") from None
    signed, signature = data[: _UNANNOUNCE.size], data[_UNANNOUNCE.size :]
    if not _verified(UNANNOUNCE_DOMAIN, public_key, signed, signature):
        raise InvalidRecordError("bad unannounce signature")
    return Unannounce(kind, topic, public_key, seq, signed, signature)
