"""The gossip message on the wire: a signed envelope that any peer may forward.

One message of a ``p2pswarm/gossip`` protomux channel (channel id: the topic), in
compact-encoding::

    fixed32  origin      the public key of the peer that wrote it
    uint     seq         the origin's clock in microseconds, strictly increasing
    uint     hops        forwards still allowed (1..MAX_HOPS); not signed
    buffer   payload     at most MAX_PAYLOAD bytes
    fixed64  signature   Ed25519 by origin over DOMAIN + topic + origin + seq + payload

The message id is ``blake2b(origin + seq)``: it names the message whatever path it came by.
``hops`` is left out of the signature because every relay lowers it; a hostile relay can
raise it back (to at most :data:`MAX_HOPS`), which costs one more round of copies that
duplicate suppression drops.

Sans-IO: bytes in, a :class:`GossipEnvelope` out, or :class:`~p2pswarm.errors.
GossipMessageError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ..errors import CompactDecodeError, GossipMessageError
from ..keys import verify as verify_signature
from .compact import Reader, Writer

__all__ = (
    "DOMAIN",
    "MAX_HOPS",
    "MAX_PAYLOAD",
    "PROTOCOL",
    "GossipEnvelope",
    "decode",
    "encode",
    "message_id",
    "sign",
    "verify",
)

#: The protomux protocol name of gossip channels (their id is the topic).
PROTOCOL: Final = "p2pswarm/gossip"
#: Signature domain, so a gossip signature can never pass for another message's.
DOMAIN: Final = b"p2pswarm/gossip/1\x00"
#: Largest payload one message carries.
MAX_PAYLOAD: Final = 64 * 1024
#: Most forwards a message may be given.
MAX_HOPS: Final = 32
#: ``seq`` is microseconds since the epoch: 2**62 is past the year 146,000.
_MAX_SEQ: Final = 2**62


@dataclass(frozen=True, slots=True)
class GossipEnvelope:
    """One gossip message as decoded (the signature is checked by :func:`verify`)."""

    origin: bytes
    seq: int
    hops: int
    payload: bytes
    signature: bytes

    @property
    def id(self) -> bytes:
        return message_id(self.origin, self.seq)

    def with_hops(self, hops: int) -> GossipEnvelope:
        return GossipEnvelope(self.origin, self.seq, hops, self.payload, self.signature)


def message_id(origin: bytes, seq: int) -> bytes:
    """The 16-byte id of the message ``origin`` wrote at ``seq``."""
    return hashlib.blake2b(origin + seq.to_bytes(8, "little"), digest_size=16).digest()


def _signed_bytes(topic: bytes, origin: bytes, seq: int, payload: bytes) -> bytes:
    return DOMAIN + topic + origin + seq.to_bytes(8, "little") + payload


def sign(
    signer: Callable[[bytes], bytes],
    origin: bytes,
    topic: bytes,
    seq: int,
    hops: int,
    payload: bytes,
) -> GossipEnvelope:
    """A new message from ``origin``; ``signer`` is its Ed25519 signing function
    (:meth:`p2pswarm.KeyPair.sign`)."""
    if not 0 < seq < _MAX_SEQ:
        raise ValueError("seq out of range")
    if not 1 <= hops <= MAX_HOPS:
        raise ValueError(f"hops must be 1..{MAX_HOPS}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"a gossip payload is at most {MAX_PAYLOAD} bytes, got {len(payload)}")
    signature = signer(_signed_bytes(topic, origin, seq, payload))
    return GossipEnvelope(origin, seq, hops, bytes(payload), signature)


def verify(envelope: GossipEnvelope, topic: bytes) -> None:
    """Raise :class:`GossipMessageError` unless ``origin`` signed this message for ``topic``."""
    signed = _signed_bytes(topic, envelope.origin, envelope.seq, envelope.payload)
    if not verify_signature(envelope.origin, signed, envelope.signature):
        raise GossipMessageError("gossip signature does not verify")


def encode(envelope: GossipEnvelope) -> bytes:
    writer = Writer()
    writer.fixed(envelope.origin, 32)
    writer.uint(envelope.seq)
    writer.uint(envelope.hops)
    writer.buffer(envelope.payload)
    writer.fixed(envelope.signature, 64)
    return writer.getvalue()


def decode(data: bytes) -> GossipEnvelope:
    """Strict: every field bounded, nothing after the signature."""
    if len(data) > MAX_PAYLOAD + 256:
        raise GossipMessageError(f"a gossip message of {len(data)} bytes is too large")
    try:
        reader = Reader(data)
        origin = reader.fixed(32)
        seq = reader.bounded_uint(_MAX_SEQ - 1, "seq")
        hops = reader.bounded_uint(MAX_HOPS, "hops")
        payload = reader.buffer(MAX_PAYLOAD)
        signature = reader.fixed(64)
        reader.finish()
    except CompactDecodeError as exc:
        raise GossipMessageError(f"malformed gossip message: {exc}") from None
    if seq == 0 or hops == 0:
        raise GossipMessageError("gossip seq and hops must be positive")
    return GossipEnvelope(origin, seq, hops, payload, signature)
