"""The secret stream as a sans-IO state machine, wire-identical to ``@hyperswarm/secret-stream``.

Bytes in, events out, bytes out, and no I/O: the caller owns the socket (h11's model).

Wire, in order, each piece one uint24-little-endian-length frame (:mod:`.framing`):

1. The Noise handshake messages (:mod:`.handshake`), XX or IK. A responder tells the two
   apart by the size of the first message.
2. One 56-byte frame each way: the sender's 32-byte stream id (BLAKE2b-256 of the role's
   ``hyperswarm/secret-stream`` namespace, keyed by the handshake hash), then the 24-byte
   ``crypto_secretstream_xchacha20poly1305`` header. The receiver checks the id.
3. Data frames: secretstream messages. An empty plaintext is a keep-alive.

There is no end frame: the stream ends with a TCP half-close, fed in as
``receive_data(b"")``.

Driving it::

    stream = SecretStream(initiator=True, key_pair=kp)
    write(stream.data_to_send())                 # the first handshake message
    for event in stream.receive_data(read()):    # b"" when the peer half-closed
        ...                                      # HandshakeComplete, Data, KeepAlive, ...
    write(stream.data_to_send())                 # replies and the header frame, if any
    write(stream.send(b"payload"))

Errors, h11's way: a remote fault never escapes ``receive_data`` as an exception on the
call that found it. That call returns every event decoded before the fault, then a
:class:`ProtocolViolation` carrying the typed error (a
:class:`~p2pswarm.errors.HandshakeError` during the handshake, otherwise a
:class:`~p2pswarm.errors.RemoteProtocolError`), so nothing already decoded is lost. The
machine is then dead: every later ``receive_data`` re-raises that error. Misuse by the
caller (sending before the handshake completes, feeding data after the end) raises
:class:`~p2pswarm.errors.LocalProtocolError` at once.

Limits: handshake frames are capped at Noise's 65,535 bytes (nothing large is buffered for
an unauthenticated peer); after the handshake a frame may be up to ``max_frame_size``
bytes, by default the 16 MiB - 1 that the wire format and the JavaScript side allow (a JS
peer writes each ``write()`` as one frame). A larger length prefix ends the stream as soon
as its 3 bytes arrive. Outgoing data is cut into frames of at most ``max_send_size``
plaintext bytes (64 KiB by default: large enough that per-frame costs vanish, small enough
that the receiver can decrypt while more arrives).

A caller that must vet the peer before completing (a firewall, a ban list) passes
``authorize=True``: as soon as the remote static key is known, ``receive_data`` stops after
a :class:`PeerIdentified` event, before this side writes its final handshake message or its
header frame; the caller then calls :meth:`SecretStream.accept_peer` (which returns the
events of whatever was buffered meanwhile) or simply drops the connection.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ..errors import HandshakeError, LocalProtocolError, RemoteProtocolError
from ..keys import KeyPair, check_public_key

# OpenSSL's ChaCha20 for bulk messages, libsodium below its threshold: measured about 1.3x
# the single-process throughput of libsodium alone. ``._secretstream`` is the plain
# libsodium implementation of the same interface (the tests run both).
from ._secretstream_fast import ABYTES, HEADERBYTES, Puller, Pusher
from .framing import MAX_FRAME_SIZE, FrameDecoder, encode_frame_header
from .handshake import (
    HANDSHAKE_HASH_SIZE,
    MAX_HANDSHAKE_MESSAGE,
    Hello,
    NoiseHandshake,
    Pattern,
    decode_hello,
    detect_pattern,
    encode_hello,
)

__all__ = (
    "DEFAULT_MAX_SEND_SIZE",
    "Data",
    "EndOfStream",
    "Event",
    "HandshakeComplete",
    "KeepAlive",
    "PeerIdentified",
    "ProtocolViolation",
    "SecretStream",
    "StreamState",
    "stream_id",
)

STREAM_ID_SIZE: Final = 32
HEADER_FRAME_SIZE: Final = STREAM_ID_SIZE + HEADERBYTES
DEFAULT_MAX_SEND_SIZE: Final = 64 * 1024


def _namespace(name: bytes, count: int) -> tuple[bytes, ...]:
    """hypercore-crypto's ``namespace(name, count)``: BLAKE2b-256(BLAKE2b-256(name) || i)."""
    base = hashlib.blake2b(name, digest_size=32).digest()
    return tuple(hashlib.blake2b(base + bytes((i,)), digest_size=32).digest() for i in range(count))


NS_INITIATOR, NS_RESPONDER, NS_SEND = _namespace(b"hyperswarm/secret-stream", 3)


def stream_id(handshake_hash: bytes, initiator: bool) -> bytes:
    """The 32-byte id the initiator (or responder) sends before its secretstream header."""
    namespace = NS_INITIATOR if initiator else NS_RESPONDER
    return hashlib.blake2b(namespace, digest_size=STREAM_ID_SIZE, key=handshake_hash).digest()


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerIdentified:
    """The remote static key is known (``authorize=True`` only); call ``accept_peer()``."""

    remote_public_key: bytes
    remote_topics: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """The Noise handshake finished; our header frame waits in ``data_to_send()``."""

    remote_public_key: bytes
    handshake_hash: bytes
    pattern: Pattern
    #: The remote hello, or None for a plain secret-stream peer (a JavaScript one).
    remote_hello: Hello | None

    @property
    def remote_topics(self) -> tuple[bytes, ...]:
        return () if self.remote_hello is None else self.remote_hello.topics


@dataclass(frozen=True, slots=True)
class Data:
    """Decrypted application bytes (never empty)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """The peer sent an empty message to show it is alive."""


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """The peer half-closed cleanly: no more data will arrive."""


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The peer broke the protocol; the stream is dead. Always the last event."""

    error: RemoteProtocolError


Event = PeerIdentified | HandshakeComplete | Data | KeepAlive | EndOfStream | ProtocolViolation


class StreamState(enum.Enum):
    """Where the receive side of the machine is."""

    HANDSHAKE = "handshake"
    #: Paused after PeerIdentified until accept_peer().
    IDENTIFIED = "identified"
    OPEN = "open"
    #: The peer half-closed cleanly.
    ENDED = "ended"
    FAILED = "failed"
    #: close() was called.
    CLOSED = "closed"


class SecretStream:
    """One end of one secret stream (see the module docstring for the protocol and usage)."""

    def __init__(
        self,
        *,
        initiator: bool,
        key_pair: KeyPair,
        remote_public_key: bytes | None = None,
        topics: Sequence[bytes] = (),
        send_hello: bool = True,
        authorize: bool = False,
        max_frame_size: int = MAX_FRAME_SIZE,
        max_send_size: int = DEFAULT_MAX_SEND_SIZE,
        ephemeral_seed: bytes | None = None,
    ) -> None:
        """Create the machine; an initiator's first message is ready in ``data_to_send()``.

        ``remote_public_key`` (initiator only) selects IK; without it the initiator runs
        XX. ``topics`` (at most 64, 32 bytes each) go in the initiator's hello.
        ``send_hello=False`` sends empty payloads, exactly like a JavaScript peer.
        ``ephemeral_seed`` fixes the ephemeral key, for reproducible test vectors only.
        """
        if not initiator and remote_public_key is not None:
            raise ValueError("a responder learns the remote public key from the handshake")
        if not HEADER_FRAME_SIZE <= max_frame_size <= MAX_FRAME_SIZE:
            raise ValueError(f"max_frame_size must be {HEADER_FRAME_SIZE}..{MAX_FRAME_SIZE}")
        if not 1 <= max_send_size <= MAX_FRAME_SIZE - ABYTES:
            raise ValueError(f"max_send_size must be 1..{MAX_FRAME_SIZE - ABYTES}")
        if topics and not initiator:
            raise ValueError("only the initiator sends topics")
        self.is_initiator = initiator
        self.public_key = key_pair.public_key
        self.remote_public_key: bytes | None = None
        self.handshake_hash: bytes | None = None
        self.remote_hello: Hello | None = None
        #: Application bytes decrypted / encrypted after the handshake (keep-alives excluded).
        self.bytes_read = 0
        self.bytes_written = 0
        self.max_frame_size = max_frame_size
        self.max_send_size = max_send_size
        self.state = StreamState.HANDSHAKE
        self._key_pair = key_pair
        self._hello = encode_hello(topics) if send_hello else b""
        self._authorize = authorize
        self._ephemeral_seed = ephemeral_seed
        self._decoder = FrameDecoder(MAX_HANDSHAKE_MESSAGE)
        self._outgoing = bytearray()
        self._error: RemoteProtocolError | None = None
        self._pusher: Pusher | None = None
        self._puller: Puller | None = None
        self._rx = b""
        self._handshake: NoiseHandshake | None = None
        self._pattern: Pattern | None = None
        if initiator:
            pattern = Pattern.XX if remote_public_key is None else Pattern.IK
            self._handshake = NoiseHandshake(
                pattern,
                initiator=True,
                key_pair=key_pair,
                remote_public_key=remote_public_key,
                ephemeral_seed=ephemeral_seed,
            )
            self._pattern = pattern
            self.remote_public_key = self._handshake.remote_public_key
            self._write_handshake_message()

    @classmethod
    def from_handshake(
        cls,
        *,
        initiator: bool,
        key_pair: KeyPair,
        remote_public_key: bytes,
        handshake_hash: bytes,
        tx: bytes,
        rx: bytes,
        max_frame_size: int = MAX_FRAME_SIZE,
        max_send_size: int = DEFAULT_MAX_SEND_SIZE,
    ) -> SecretStream:
        """A stream whose Noise handshake ran elsewhere (HyperDHT's PEER_HANDSHAKE, relayed
        through the DHT): it starts open, its header frame waiting in ``data_to_send()``,
        as ``NoiseSecretStream.start(raw, {handshake})`` does in JS. No handshake runs on
        the stream itself.
        """
        if len(tx) != 32 or len(rx) != 32 or len(handshake_hash) != HANDSHAKE_HASH_SIZE:
            raise ValueError("split keys are 32 bytes and the handshake hash 64")
        stream = cls(
            initiator=False,
            key_pair=key_pair,
            max_frame_size=max_frame_size,
            max_send_size=max_send_size,
        )
        stream.is_initiator = initiator
        stream.remote_public_key = check_public_key(remote_public_key, "remote public key")
        stream.handshake_hash = handshake_hash
        stream._pattern = Pattern.IK
        stream._rx = rx
        stream._pusher = Pusher(tx)
        stream._outgoing += encode_frame_header(HEADER_FRAME_SIZE)
        stream._outgoing += stream_id(handshake_hash, initiator)
        stream._outgoing += stream._pusher.header
        stream._decoder.max_frame_size = max_frame_size
        stream.state = StreamState.OPEN
        return stream

    # -- properties -------------------------------------------------------------------------

    @property
    def pattern(self) -> Pattern | None:
        """XX or IK; None for a responder that has not seen the first message yet."""
        return self._pattern

    @property
    def handshake_complete(self) -> bool:
        """True once the keys exist and ``send()`` may be called."""
        return self._pusher is not None

    @property
    def remote_topics(self) -> tuple[bytes, ...]:
        """Topics from the remote hello: what the initiator found us under."""
        return () if self.remote_hello is None else self.remote_hello.topics

    # -- output -----------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Protocol bytes waiting to be written (handshake messages, the header frame)."""
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def send(self, data: bytes | bytearray | memoryview) -> bytes:
        """Encrypt ``data`` into frames (cut at ``max_send_size``); b"" for empty data."""
        pusher = self._require_pusher()
        size = len(data)
        if size == 0:
            return b""
        self.bytes_written += size
        limit = self.max_send_size
        if size <= limit:
            ciphertext = pusher.push(data)
            return b"".join((encode_frame_header(len(ciphertext)), ciphertext))
        view = memoryview(data)
        parts: list[bytes] = []
        for start in range(0, size, limit):
            ciphertext = pusher.push(view[start : start + limit])
            parts.append(encode_frame_header(len(ciphertext)))
            parts.append(ciphertext)
        view.release()
        return b"".join(parts)

    def send_message(self, data: bytes | bytearray | memoryview) -> bytes:
        """Encrypt ``data`` as exactly one frame, whatever ``max_send_size`` says: one
        message of the peer's (JS ``stream.write``), which message protocols such as
        protomux rely on. At most ``MAX_FRAME_SIZE - 17`` bytes; b"" for empty data.

        :raises ~p2pswarm.errors.LocalProtocolError: ``data`` does not fit in one frame
        """
        pusher = self._require_pusher()
        size = len(data)
        if size == 0:
            return b""
        if size > MAX_FRAME_SIZE - ABYTES:
            raise LocalProtocolError(
                f"a message of {size} bytes does not fit in one frame "
                f"(at most {MAX_FRAME_SIZE - ABYTES})"
            )
        self.bytes_written += size
        ciphertext = pusher.push(data)
        return b"".join((encode_frame_header(len(ciphertext)), ciphertext))

    def send_keepalive(self) -> bytes:
        """A keep-alive frame (an encrypted empty message)."""
        ciphertext = self._require_pusher().push(b"")
        return encode_frame_header(len(ciphertext)) + ciphertext

    def _require_pusher(self) -> Pusher:
        if self._pusher is None:
            raise LocalProtocolError("cannot send before the handshake is complete")
        if self.state is StreamState.CLOSED or self.state is StreamState.FAILED:
            raise LocalProtocolError(f"cannot send: the stream is {self.state.value}")
        return self._pusher

    # -- input ------------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed bytes read from the peer; ``b""`` means the peer half-closed.

        Returns the events they complete, in order. See the module docstring for how
        faults are reported.
        """
        state = self.state
        if state is not StreamState.OPEN and state is not StreamState.HANDSHAKE:
            if state is StreamState.FAILED:
                assert self._error is not None
                raise self._error
            if state is StreamState.IDENTIFIED:
                raise LocalProtocolError("call accept_peer() before feeding more data")
            if state is StreamState.ENDED and not data:
                return []
            raise LocalProtocolError(f"cannot receive data in state {state.value}")
        events: list[Event] = []
        if not data:
            self._on_end(events)
        else:
            self._process(data, events)
        return events

    def accept_peer(self) -> list[Event]:
        """Let the handshake go on after :class:`PeerIdentified`; returns further events."""
        if self.state is not StreamState.IDENTIFIED:
            raise LocalProtocolError("accept_peer() is only valid after PeerIdentified")
        self.state = StreamState.HANDSHAKE
        events: list[Event] = []
        try:
            self._continue_handshake(events)
        except RemoteProtocolError as exc:
            self._fail(exc, events)
            return events
        if self._decoder.buffered:
            self._process(b"", events)
        return events

    def close(self) -> None:
        """Forget all keys and refuse further use (the caller closes the socket)."""
        if self.state is not StreamState.FAILED:
            self.state = StreamState.CLOSED
        self._drop_secrets()

    def _process(self, data: bytes | bytearray | memoryview, events: list[Event]) -> None:
        frames = self._decoder.frames(data)
        try:
            for body in frames:
                if self._puller is not None:
                    plaintext = self._puller.pull(body)
                    if plaintext:
                        self.bytes_read += len(plaintext)
                        events.append(Data(plaintext))
                    else:
                        events.append(KeepAlive())
                elif self._pusher is not None:
                    self._on_header_frame(body)
                else:
                    self._on_handshake_frame(body, events)
                    if self.state is StreamState.IDENTIFIED:
                        break
        except RemoteProtocolError as exc:
            self._fail(exc, events)
        finally:
            frames.close()

    def _on_handshake_frame(self, body: memoryview, events: list[Event]) -> None:
        handshake = self._handshake
        if handshake is None:
            handshake = self._handshake = NoiseHandshake(
                detect_pattern(len(body)),
                initiator=False,
                key_pair=self._key_pair,
                ephemeral_seed=self._ephemeral_seed,
            )
            self._pattern = handshake.pattern
        hello_allowed = handshake.hello_allowed
        knew_remote = handshake.remote_public_key is not None
        payload = handshake.read_message(body)
        if payload:
            if not hello_allowed:
                raise HandshakeError("the first XX message must carry no payload")
            self.remote_hello = decode_hello(payload)
        if not knew_remote and handshake.remote_public_key is not None:
            self.remote_public_key = handshake.remote_public_key
            if self._authorize:
                self.state = StreamState.IDENTIFIED
                events.append(PeerIdentified(handshake.remote_public_key, self.remote_topics))
                return
        self._continue_handshake(events)

    def _continue_handshake(self, events: list[Event]) -> None:
        handshake = self._handshake
        assert handshake is not None
        if handshake.writes_next:
            self._write_handshake_message()
        if handshake.complete:
            self._on_handshake_complete(handshake, events)

    def _write_handshake_message(self) -> None:
        handshake = self._handshake
        assert handshake is not None
        payload = self._hello if handshake.hello_allowed else b""
        message = handshake.write_message(payload)
        self._outgoing += encode_frame_header(len(message))
        self._outgoing += message

    def _on_handshake_complete(self, handshake: NoiseHandshake, events: list[Event]) -> None:
        assert handshake.remote_public_key is not None
        self.remote_public_key = handshake.remote_public_key
        self.handshake_hash = handshake.handshake_hash
        self._rx = handshake.rx
        self._pusher = Pusher(handshake.tx)
        self._handshake = None
        self._outgoing += encode_frame_header(HEADER_FRAME_SIZE)
        self._outgoing += stream_id(handshake.handshake_hash, self.is_initiator)
        self._outgoing += self._pusher.header
        self._decoder.max_frame_size = self.max_frame_size
        self.state = StreamState.OPEN
        events.append(
            HandshakeComplete(
                handshake.remote_public_key,
                handshake.handshake_hash,
                handshake.pattern,
                self.remote_hello,
            )
        )

    def _on_header_frame(self, body: memoryview) -> None:
        if len(body) != HEADER_FRAME_SIZE:
            raise RemoteProtocolError("invalid header message received")
        assert self.handshake_hash is not None
        expected = stream_id(self.handshake_hash, not self.is_initiator)
        if not hmac.compare_digest(body[:STREAM_ID_SIZE], expected):
            raise RemoteProtocolError("invalid header received: wrong stream id")
        self._puller = Puller(self._rx, body[STREAM_ID_SIZE:])
        self._rx = b""

    def _on_end(self, events: list[Event]) -> None:
        if self._pusher is None:
            self._fail(
                HandshakeError("the peer closed the connection during the handshake"), events
            )
        elif self._decoder.buffered:
            self._fail(RemoteProtocolError("the peer closed the connection mid-frame"), events)
        else:
            self.state = StreamState.ENDED
            events.append(EndOfStream())

    def _fail(self, error: RemoteProtocolError, events: list[Event]) -> None:
        if self._pusher is None and not isinstance(error, HandshakeError):
            # Whatever broke before the keys exist (an oversized frame, say) broke the handshake.
            error = HandshakeError(str(error))
        self.state = StreamState.FAILED
        # Keep no traceback: its frames would pin buffers and secrets of this call.
        self._error = error.with_traceback(None)
        self._drop_secrets()
        events.append(ProtocolViolation(error))

    def _drop_secrets(self) -> None:
        self._handshake = None
        self._puller = None
        self._rx = b""
