"""Ed25519 as a Noise DH function, as ``noise-curve-ed`` does it, for noiseprotocol.

Hyperswarm's handshake does Diffie-Hellman directly on Ed25519 points: the scalar is the
clamped first half of SHA-512 of the 32-byte seed (what libsodium's signing keys hold),
multiplied with ``crypto_scalarmult_ed25519_noclamp``. Converting the keys to X25519
instead would give different shared secrets and could never interoperate, so
noiseprotocol's default backend is extended with an ``Ed25519`` DH rather than reusing its
``25519``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import nacl.bindings as sodium
from noise.backends.default.backend import DefaultNoiseBackend
from noise.functions.dh import DH
from noise.functions.keypair import KeyPair as NoiseKeyPair

__all__ = ("ED25519_BACKEND", "Ed25519KeyPair", "Ed25519NoiseBackend", "ed25519_scalar")

KEY_SIZE = 32


def ed25519_scalar(seed: bytes) -> bytes:
    """The X25519-style clamped scalar libsodium derives from an Ed25519 seed."""
    digest = bytearray(hashlib.sha512(seed).digest()[:32])
    digest[0] &= 248
    digest[31] &= 127
    digest[31] |= 64
    return bytes(digest)


class Ed25519KeyPair(NoiseKeyPair):  # type: ignore[misc]
    """A Noise key pair on Ed25519: ``private`` holds the clamped scalar, ``public`` the point."""

    @classmethod
    def from_private_bytes(cls, private_bytes: bytes) -> Ed25519KeyPair:
        """Build the key pair from a 32-byte Ed25519 seed (libsodium's derivation)."""
        seed = bytes(private_bytes)
        if len(seed) != KEY_SIZE:
            raise ValueError("an Ed25519 seed is 32 bytes")
        public_key, _ = sodium.crypto_sign_seed_keypair(seed)
        return cls(private=ed25519_scalar(seed), public=public_key, public_bytes=public_key)

    @classmethod
    def from_public_bytes(cls, public_bytes: bytes) -> Ed25519KeyPair:
        """A remote key: only the 32-byte point, checked when it is used in a DH."""
        public_key = bytes(public_bytes)
        if len(public_key) != KEY_SIZE:
            raise ValueError("an Ed25519 public key is 32 bytes")
        return cls(public=public_key, public_bytes=public_key)


class Ed25519DH(DH):  # type: ignore[misc]
    """``noise-curve-ed``'s DH: scalar multiplication on the Ed25519 curve, no clamping."""

    @property
    def klass(self) -> type[Ed25519KeyPair]:
        return Ed25519KeyPair

    @property
    def dhlen(self) -> int:
        return KEY_SIZE

    def generate_keypair(self) -> Ed25519KeyPair:
        """A fresh ephemeral key pair: an Ed25519 signing key pair, as ``noise-curve-ed``."""
        _, secret_key = sodium.crypto_sign_keypair()
        return Ed25519KeyPair.from_private_bytes(secret_key[:KEY_SIZE])

    def dh(self, private_key: Any, public_key: Any) -> bytes:
        # libsodium rejects points not on the curve, of small order, or a zero result by
        # raising; the handshake maps that to HandshakeError.
        shared: bytes = sodium.crypto_scalarmult_ed25519_noclamp(private_key, public_key)
        return shared


class Ed25519NoiseBackend(DefaultNoiseBackend):  # type: ignore[misc]
    """noiseprotocol's default backend plus the ``Ed25519`` DH name."""

    def __init__(self) -> None:
        super().__init__()
        self.diffie_hellmans["Ed25519"] = Ed25519DH
        self.keypairs["Ed25519"] = Ed25519KeyPair


#: One shared instance: the backend holds only the name tables.
ED25519_BACKEND = Ed25519NoiseBackend()
