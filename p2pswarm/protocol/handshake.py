"""The Noise handshake of Hyperswarm's secret stream, and our hello inside it.

Two patterns, both ``Noise_*_Ed25519_ChaChaPoly_BLAKE2b`` with an empty prologue, exactly
as ``@hyperswarm/secret-stream`` runs them through ``noise-handshake`` and
``noise-curve-ed``: ``XX`` when the initiator does not know the responder's key (dialling
an address), ``IK`` when it does (dialling a peer found by its key). noiseprotocol does the
work, given the Ed25519 DH of :mod:`._noise_ed25519`; this module hides its rough edges
(see the project's notes on it): raw ``InvalidTag`` and ``noise`` exceptions become
:class:`~p2pswarm.errors.HandshakeError`, the object refuses further use after any failure,
and the remote static key is read from the handshake state that noiseprotocol would
otherwise drop.

The hello travels in the encrypted handshake payloads: one version byte, a topic count and
that many 32-byte topics (the topics under which the initiator found the responder, so
that the responder learns them too). An empty payload, which is what JavaScript peers
send, means a plain secret-stream peer and is accepted.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import nacl.exceptions
from cryptography.exceptions import InvalidTag
from noise.connection import Keypair, NoiseConnection

from ..errors import HandshakeError
from ..keys import KeyPair, check_public_key, check_topic
from ._noise_ed25519 import ED25519_BACKEND, Ed25519KeyPair

__all__ = (
    "HANDSHAKE_HASH_SIZE",
    "HELLO_VERSION",
    "MAX_HANDSHAKE_MESSAGE",
    "MAX_HELLO_TOPICS",
    "Hello",
    "NoiseHandshake",
    "Pattern",
    "decode_hello",
    "encode_hello",
)

HELLO_VERSION: Final = 1
MAX_HELLO_TOPICS: Final = 64
TOPIC_SIZE: Final = 32
HANDSHAKE_HASH_SIZE: Final = 64
SPLIT_KEY_SIZE: Final = 32
#: Noise's own limit on one handshake message; ``noise-handshake`` enforces it too.
MAX_HANDSHAKE_MESSAGE: Final = 65535
#: Size of message 1: XX carries only the ephemeral key; IK at least e, s+MAC and a MAC.
XX_FIRST_MESSAGE_SIZE: Final = 32
IK_MIN_FIRST_MESSAGE_SIZE: Final = 32 + 48 + 16

#: Everything noiseprotocol and its crypto raise on hostile input (raw ``InvalidTag``, the
#: ``noise`` exceptions, ``ValueError`` for a short key, nacl's errors for an invalid or
#: small-order Ed25519 point, and whatever its unvalidated parsing trips over) is mapped
#: to HandshakeError at this one boundary: the input is hostile, not our bug.
_HANDSHAKE_FAILURES = (InvalidTag, nacl.exceptions.CryptoError, Exception)


class Pattern(enum.Enum):
    """Which Noise handshake pattern runs."""

    #: Mutual authentication, neither key known in advance (3 messages).
    XX = "XX"
    #: The initiator knows the responder's key already (2 messages, 1 round trip).
    IK = "IK"


#: Which messages each side writes, by pattern: True at index i means "the initiator writes".
_WRITERS: Final = {Pattern.XX: (True, False, True), Pattern.IK: (True, False)}
#: Which messages may carry a hello: XX message 1 travels in clear, so it must stay empty.
_HELLO_MESSAGES: Final = {Pattern.XX: (False, True, True), Pattern.IK: (True, True)}


@dataclass(frozen=True, slots=True)
class Hello:
    """What a p2pswarm peer says about itself inside the handshake."""

    version: int
    topics: tuple[bytes, ...] = ()


def encode_hello(topics: Iterable[bytes] = ()) -> bytes:
    """The hello payload: version, topic count, then each 32-byte topic."""
    checked = tuple(check_topic(topic) for topic in topics)
    if len(checked) > MAX_HELLO_TOPICS:
        raise ValueError(f"at most {MAX_HELLO_TOPICS} topics fit in a hello, got {len(checked)}")
    return bytes((HELLO_VERSION, len(checked))) + b"".join(checked)


def decode_hello(payload: bytes | bytearray) -> Hello | None:
    """Parse a hello; ``None`` for an empty payload (a plain secret-stream peer).

    Raises :class:`~p2pswarm.errors.HandshakeError` for an unknown version, a count above
    the maximum, or a length that does not match the count.
    """
    if not payload:
        return None
    version = payload[0]
    if version != HELLO_VERSION:
        raise HandshakeError(f"unknown hello version {version}")
    if len(payload) < 2:
        raise HandshakeError("truncated hello")
    count = payload[1]
    if count > MAX_HELLO_TOPICS:
        raise HandshakeError(f"hello lists {count} topics, more than {MAX_HELLO_TOPICS}")
    if len(payload) != 2 + count * TOPIC_SIZE:
        raise HandshakeError("hello length does not match its topic count")
    topics = tuple(
        bytes(payload[2 + i * TOPIC_SIZE : 2 + (i + 1) * TOPIC_SIZE]) for i in range(count)
    )
    return Hello(version, topics)


def detect_pattern(first_message_size: int) -> Pattern:
    """Tell the initiator's pattern from the size of its first message (responder side)."""
    if first_message_size == XX_FIRST_MESSAGE_SIZE:
        return Pattern.XX
    if first_message_size >= IK_MIN_FIRST_MESSAGE_SIZE:
        return Pattern.IK
    raise HandshakeError(
        f"first handshake message of {first_message_size} bytes is neither XX nor IK"
    )


class NoiseHandshake:
    """One side of one handshake: write and read messages in turn until :attr:`complete`.

    After completion, :attr:`tx`, :attr:`rx` (32-byte split keys), :attr:`handshake_hash`
    (64 bytes) and :attr:`remote_public_key` are set. After any failure the object is
    dead: every further call raises :class:`~p2pswarm.errors.HandshakeError`.
    """

    __slots__ = (
        "_connection",
        "_failed",
        "_position",
        "_state",
        "complete",
        "handshake_hash",
        "initiator",
        "pattern",
        "public_key",
        "remote_public_key",
        "rx",
        "tx",
    )

    def __init__(
        self,
        pattern: Pattern,
        *,
        initiator: bool,
        key_pair: KeyPair,
        remote_public_key: bytes | None = None,
        ephemeral_seed: bytes | None = None,
        prologue: bytes = b"",
    ) -> None:
        """``ephemeral_seed`` fixes the ephemeral key: for reproducible test vectors only.
        ``prologue``: empty for the secret stream; HyperDHT's connect handshake uses
        ``NS_PEER_HANDSHAKE``."""
        if pattern is Pattern.IK and initiator and remote_public_key is None:
            raise ValueError("an IK initiator needs the responder's public key")
        self.pattern = pattern
        self.initiator = initiator
        self.public_key = key_pair.public_key
        self.remote_public_key: bytes | None = None
        self.tx = b""
        self.rx = b""
        self.handshake_hash = b""
        self.complete = False
        self._failed = False
        self._position = 0
        name = f"Noise_{pattern.value}_Ed25519_ChaChaPoly_BLAKE2b".encode()
        connection = NoiseConnection.from_name(name, backend=ED25519_BACKEND)
        if initiator:
            connection.set_as_initiator()
        else:
            connection.set_as_responder()
        connection.set_prologue(prologue)
        connection.set_keypair_from_private_bytes(Keypair.STATIC, key_pair.seed)
        if pattern is Pattern.IK and initiator:
            assert remote_public_key is not None
            remote = check_public_key(remote_public_key, "remote public key")
            connection.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, remote)
            self.remote_public_key = remote
        connection.start_handshake()
        # noiseprotocol deletes handshake_state when it completes; keep it to read rs.
        self._state = connection.noise_protocol.handshake_state
        if ephemeral_seed is not None:
            self._state.e = Ed25519KeyPair.from_private_bytes(ephemeral_seed)
        self._connection = connection

    @property
    def writes_next(self) -> bool:
        """True when it is this side's turn to write a message."""
        writers = _WRITERS[self.pattern]
        return (
            not self.complete
            and self._position < len(writers)
            and writers[self._position] is self.initiator
        )

    @property
    def hello_allowed(self) -> bool:
        """Whether the next message (in either direction) may carry a hello."""
        messages = _HELLO_MESSAGES[self.pattern]
        return self._position < len(messages) and messages[self._position]

    def write_message(self, payload: bytes = b"") -> bytes:
        """Produce this side's next handshake message, carrying ``payload``."""
        self._check_usable()
        if not self.writes_next:
            raise HandshakeError("not this side's turn to write a handshake message")
        try:
            message = bytes(self._connection.write_message(payload))
        except _HANDSHAKE_FAILURES as exc:
            self._fail()
            raise HandshakeError(f"cannot write handshake message: {exc!r}") from None
        self._advance()
        return message

    def read_message(self, message: bytes | bytearray | memoryview) -> bytes:
        """Consume the peer's next handshake message and return its decrypted payload.

        Raises :class:`~p2pswarm.errors.HandshakeError` for anything that is not the
        expected message: garbage, tampering, truncation, a wrong responder key.
        """
        self._check_usable()
        if self.writes_next or self.complete:
            self._fail()
            raise HandshakeError("unexpected handshake message")
        if len(message) > MAX_HANDSHAKE_MESSAGE:
            self._fail()
            raise HandshakeError("handshake message too long")
        try:
            payload = bytes(self._connection.read_message(bytes(message)))
            remote = self._state.rs
            public = getattr(remote, "public_bytes", None)
            if public is not None and self.remote_public_key is None:
                self.remote_public_key = bytes(public)
        except _HANDSHAKE_FAILURES:
            self._fail()
            raise HandshakeError("handshake message failed to authenticate or parse") from None
        self._advance()
        return payload

    def _advance(self) -> None:
        self._position += 1
        if self._connection.handshake_finished:
            protocol = self._connection.noise_protocol
            self.tx = bytes(protocol.cipher_state_encrypt.k)
            self.rx = bytes(protocol.cipher_state_decrypt.k)
            self.handshake_hash = bytes(self._connection.get_handshake_hash())
            if len(self.tx) != SPLIT_KEY_SIZE or len(self.handshake_hash) != HANDSHAKE_HASH_SIZE:
                self._fail()
                raise HandshakeError("unexpected key sizes after the handshake")
            if self.remote_public_key is None:
                self._fail()
                raise HandshakeError("handshake completed without the remote static key")
            self.complete = True
            # Nothing more is needed from noiseprotocol; drop its state.
            del self._connection
            del self._state

    def _check_usable(self) -> None:
        if self._failed:
            raise HandshakeError("handshake already failed")
        if self.complete:
            raise HandshakeError("handshake already complete")

    def _fail(self) -> None:
        self._failed = True
        self.tx = self.rx = self.handshake_hash = b""
