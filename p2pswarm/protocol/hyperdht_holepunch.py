"""HyperDHT's hole-punch messages (``hyperdht/lib/messages.js``, ``secure-payload.js``).

After a relayed handshake, client and server exchange PEER_HOLEPUNCH rounds through a DHT
node, in the same relay shape as PEER_HANDSHAKE (``mode`` says which leg). The value
(:class:`Holepunch`) names the server's hole-punch session ``id`` (from the server's noise
payload) and carries an opaque ``payload``: a :class:`HolepunchPayload` sealed with
XSalsa20-Poly1305 (libsodium ``crypto_secretbox_easy``) under the *holepunch secret*,
``BLAKE2b-256(NS_PEER_HOLEPUNCH, key=handshake_hash)``, so only the two ends of the handshake
can read or forge one. Layout: ``nonce(24) || mac(16) || ciphertext``.

The payload says what the sender knows of its NAT (firewall type, public addresses), whether
it is punching, and carries address tokens: ``token`` is ``BLAKE2b-256(host, key=local
secret)`` of the address the sender saw the other side at; echoed back as ``remoteToken`` it
proves that address really belongs to the peer (a verified address, which the random-port
strategies require).

Decoders treat input as hostile: bounded arrays, shortest-form integers, a typed
:class:`~p2pswarm.errors.CompactDecodeError`; :meth:`SecurePayload.decrypt` returns None for
anything that does not open or decode, as JS does. Sans-IO.
"""

from __future__ import annotations

import hashlib
import os
from typing import Final, NamedTuple

import nacl.bindings as sodium
import nacl.exceptions

from ..errors import CompactDecodeError
from .compact import IPv4Address, Reader, Writer

__all__ = (
    "MAX_HOLEPUNCH_ADDRESSES",
    "MAX_HOLEPUNCH_PAYLOAD",
    "Holepunch",
    "HolepunchPayload",
    "SecurePayload",
    "decode_holepunch",
    "decode_holepunch_payload",
    "encode_holepunch",
    "encode_holepunch_payload",
    "holepunch_secret",
)

#: A sealed payload fits a datagram; JS sends well under 200 bytes.
MAX_HOLEPUNCH_PAYLOAD: Final = 2048
#: Addresses in a payload, at most (JS sends one to a few).
MAX_HOLEPUNCH_ADDRESSES: Final = 64
_NONCE: Final = sodium.crypto_secretbox_NONCEBYTES
_MAC: Final = sodium.crypto_secretbox_MACBYTES


class Holepunch(NamedTuple):
    """A PEER_HOLEPUNCH request or reply value."""

    mode: int
    id: int
    payload: bytes
    peer_address: IPv4Address | None = None


class HolepunchPayload(NamedTuple):
    """The sealed part of a round (``messages.js holepunchPayload``)."""

    error: int = 0
    firewall: int = 0
    round: int = 0
    connected: bool = False
    punching: bool = False
    addresses: tuple[IPv4Address, ...] | None = None
    remote_address: IPv4Address | None = None
    token: bytes | None = None
    remote_token: bytes | None = None


def encode_holepunch(message: Holepunch) -> bytes:
    w = Writer()
    w.uint(1 if message.peer_address else 0).uint(message.mode).uint(message.id)
    w.buffer(message.payload)
    if message.peer_address:
        w.ipv4_address(message.peer_address)
    return w.getvalue()


def decode_holepunch(data: bytes) -> Holepunch:
    """A PEER_HOLEPUNCH value (trailing bytes ignored, unknown flag bits too, as JS)."""
    r = Reader(data)
    flags = r.uint()
    mode = r.uint()
    hp_id = r.uint()
    payload = r.buffer(MAX_HOLEPUNCH_PAYLOAD)
    peer = r.ipv4_address() if flags & 1 else None
    return Holepunch(mode, hp_id, payload, peer)


def encode_holepunch_payload(payload: HolepunchPayload) -> bytes:
    flags = (
        (1 if payload.connected else 0)
        | (2 if payload.punching else 0)
        | (4 if payload.addresses is not None else 0)
        | (8 if payload.remote_address else 0)
        | (16 if payload.token else 0)
        | (32 if payload.remote_token else 0)
    )
    w = Writer()
    w.uint(flags).uint(payload.error).uint(payload.firewall).uint(payload.round)
    if payload.addresses is not None:
        w.ipv4_addresses(payload.addresses)
    if payload.remote_address:
        w.ipv4_address(payload.remote_address)
    if payload.token:
        w.fixed(payload.token, 32)
    if payload.remote_token:
        w.fixed(payload.remote_token, 32)
    return w.getvalue()


def decode_holepunch_payload(data: bytes) -> HolepunchPayload:
    r = Reader(data)
    flags = r.uint()
    error = r.uint()
    firewall = r.uint()
    round_ = r.uint()
    addresses = tuple(r.ipv4_addresses(MAX_HOLEPUNCH_ADDRESSES)) if flags & 4 else None
    remote_address = r.ipv4_address() if flags & 8 else None
    token = r.fixed(32) if flags & 16 else None
    remote_token = r.fixed(32) if flags & 32 else None
    return HolepunchPayload(
        error,
        firewall,
        round_,
        bool(flags & 1),
        bool(flags & 2),
        addresses,
        remote_address,
        token,
        remote_token,
    )


def holepunch_secret(handshake_hash: bytes, namespace: bytes) -> bytes:
    """``crypto_generichash(out32, NS_PEER_HOLEPUNCH, handshake.hash)`` (``noise-wrap.js``)."""
    return hashlib.blake2b(namespace, digest_size=32, key=handshake_hash).digest()


class SecurePayload:
    """Seals and opens one handshake's round payloads, and makes its address tokens."""

    __slots__ = ("_local", "_shared")

    def __init__(self, secret: bytes, local_secret: bytes | None = None) -> None:
        if len(secret) != 32:
            raise ValueError("the holepunch secret is 32 bytes")
        self._shared = secret
        self._local = local_secret if local_secret is not None else os.urandom(32)

    def encrypt(self, payload: HolepunchPayload, nonce: bytes | None = None) -> bytes:
        nonce = nonce if nonce is not None else os.urandom(_NONCE)
        message = encode_holepunch_payload(payload)
        return nonce + sodium.crypto_secretbox(message, nonce, self._shared)

    def decrypt(self, data: bytes) -> HolepunchPayload | None:
        """The payload, or None when it is too short, forged, or does not decode."""
        if len(data) <= _NONCE + _MAC:
            return None
        try:
            message = sodium.crypto_secretbox_open(data[_NONCE:], data[:_NONCE], self._shared)
            return decode_holepunch_payload(message)
        except (nacl.exceptions.CryptoError, CompactDecodeError):
            return None

    def token(self, host: str) -> bytes:
        """``crypto_generichash(out32, host, localSecret)``: proves an address is echoed."""
        return hashlib.blake2b(host.encode(), digest_size=32, key=self._local).digest()
