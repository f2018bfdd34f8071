"""Ed25519 identities, topics, and key files.

A peer *is* its Ed25519 public key: it names the peer in the DHT, it authenticates the
Noise handshake, and it signs announce records. Keys are derived exactly as libsodium's
``crypto_sign_seed_keypair`` does, so a 32-byte seed gives the same public key here as in
Hyperswarm's ``keyPair(seed)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Final

import nacl.bindings as sodium
import nacl.exceptions

from ._files import write_atomically
from .errors import KeyFileError

__all__ = ("KeyPair", "check_public_key", "check_topic", "topic", "verify")

PUBLIC_KEY_SIZE: Final = 32
SEED_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64
TOPIC_SIZE: Final = 32

#: What the first field of a key file must say; anything else is a foreign file.
KEY_FILE_TYPE: Final = "p2pswarm-keypair"
KEY_FILE_VERSION: Final = 1
#: A key file is a few hundred bytes; refuse to read more than this.
MAX_KEY_FILE_SIZE: Final = 4096


def _check_bytes(value: object, size: int, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{what} must be {size} bytes, got {type(value).__name__}")
    value = bytes(value)
    if len(value) != size:
        raise ValueError(f"{what} must be {size} bytes, got {len(value)}")
    return value


def check_public_key(value: object, what: str = "public key") -> bytes:
    """Return ``value`` as 32 immutable bytes, or raise TypeError/ValueError saying why not."""
    return _check_bytes(value, PUBLIC_KEY_SIZE, what)


def check_topic(value: object) -> bytes:
    """Return ``value`` as a 32-byte topic, or raise TypeError/ValueError saying why not.

    Use :func:`topic` to turn a human name into a topic.
    """
    if isinstance(value, str):
        raise TypeError("topic must be 32 bytes; use p2pswarm.topic(name) to hash a name")
    return _check_bytes(value, TOPIC_SIZE, "topic")


def topic(name: str | bytes) -> bytes:
    """Return the 32-byte topic for a human-chosen name: BLAKE2b-256 of its UTF-8 bytes.

    Anyone who knows the name can join the topic; choose an unguessable name for a
    private rendezvous.
    """
    if isinstance(name, str):
        data = name.encode("utf-8")
    elif isinstance(name, bytes | bytearray | memoryview):
        data = bytes(name)
    else:
        raise TypeError(f"topic name must be str or bytes, got {type(name).__name__}")
    return hashlib.blake2b(data, digest_size=TOPIC_SIZE).digest()


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Return True when ``signature`` is a valid Ed25519 signature of ``message``.

    Never raises for a malformed key or signature: hostile input just fails to verify.
    """
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        sodium.crypto_sign_open(bytes(signature) + bytes(message), bytes(public_key))
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.RuntimeError, ValueError):
        return False
    return True


class KeyPair:
    """An Ed25519 key pair: a peer's identity.

    ``secret_key`` has libsodium's 64-byte layout (seed then public key), the same bytes
    Hyperswarm's ``keyPair.secretKey`` holds. The seed never appears in ``repr()``.
    """

    __slots__ = ("public_key", "secret_key")

    public_key: bytes
    secret_key: bytes

    def __init__(self, public_key: bytes, secret_key: bytes) -> None:
        public_key = check_public_key(public_key)
        secret_key = _check_bytes(secret_key, 64, "secret key")
        derived_public, _ = sodium.crypto_sign_seed_keypair(secret_key[:SEED_SIZE])
        if derived_public != public_key or secret_key[SEED_SIZE:] != public_key:
            raise ValueError("secret key does not belong to the public key")
        self.public_key = public_key
        self.secret_key = secret_key

    @classmethod
    def generate(cls) -> KeyPair:
        """A fresh random key pair (from the operating system's CSPRNG)."""
        return cls.from_seed(secrets.token_bytes(SEED_SIZE))

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        """The key pair libsodium's ``crypto_sign_seed_keypair`` derives from a 32-byte seed."""
        seed = _check_bytes(seed, SEED_SIZE, "seed")
        public_key, secret_key = sodium.crypto_sign_seed_keypair(seed)
        return cls(public_key, secret_key)

    @property
    def seed(self) -> bytes:
        """The 32-byte seed: everything needed to rebuild this key pair. Keep it secret."""
        return self.secret_key[:SEED_SIZE]

    def sign(self, message: bytes) -> bytes:
        """A 64-byte detached Ed25519 signature of ``message``."""
        signed: bytes = sodium.crypto_sign(bytes(message), self.secret_key)
        return signed[:SIGNATURE_SIZE]

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's signature of ``message``."""
        return verify(self.public_key, message, signature)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyPair):
            return NotImplemented
        return secrets.compare_digest(self.secret_key, other.secret_key)

    def __hash__(self) -> int:
        return hash(self.public_key)

    def __repr__(self) -> str:
        return f"<KeyPair public_key={self.public_key.hex()[:16]}…>"

    # -- key files ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the key pair to ``path`` atomically, readable by its owner only (mode 0600).

        Refuses (``FileExistsError``) to replace an existing file unless ``overwrite``:
        losing a key loses an identity.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists; refusing to overwrite a key file")
        document = {
            "type": KEY_FILE_TYPE,
            "version": KEY_FILE_VERSION,
            "public_key": self.public_key.hex(),
            "seed": self.seed.hex(),
        }
        data = (json.dumps(document, indent=2) + "\n").encode("ascii")
        write_atomically(path, data, mode=0o600)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeyPair:
        """Read a key file written by :meth:`save`.

        Raises :class:`~p2pswarm.errors.KeyFileError` (and never touches the file) when it
        is unreadable, too large, not JSON, a foreign document, or its public key does not
        match its seed.
        """
        path = Path(path)
        try:
            with open(path, "rb") as file:
                raw = file.read(MAX_KEY_FILE_SIZE + 1)
        except OSError as exc:
            raise KeyFileError(f"cannot read key file {path}: {exc.strerror or exc}") from exc
        if len(raw) > MAX_KEY_FILE_SIZE:
            raise KeyFileError(
                f"{path} is not a p2pswarm key file (larger than {MAX_KEY_FILE_SIZE} bytes)"
            )
        try:
            document = json.loads(raw.decode("ascii"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise KeyFileError(f"{path} is not a p2pswarm key file (not JSON)") from exc
        if not isinstance(document, dict) or document.get("type") != KEY_FILE_TYPE:
            raise KeyFileError(f"{path} is not a p2pswarm key file")
        if document.get("version") != KEY_FILE_VERSION:
            raise KeyFileError(f"{path}: unsupported key file version {document.get('version')!r}")
        try:
            seed = bytes.fromhex(document["seed"])
            public_key = bytes.fromhex(document["public_key"])
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyFileError(
                f"{path}: corrupt key file (seed or public_key missing or not hex)"
            ) from exc
        if len(seed) != SEED_SIZE or len(public_key) != PUBLIC_KEY_SIZE:
            raise KeyFileError(f"{path}: corrupt key file (wrong key length)")
        key_pair = cls.from_seed(seed)
        if key_pair.public_key != public_key:
            raise KeyFileError(f"{path}: corrupt key file (public key does not match the seed)")
        return key_pair
