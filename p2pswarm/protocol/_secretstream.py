"""libsodium's ``crypto_secretstream_xchacha20poly1305`` behind a two-class interface.

The secret stream needs exactly this much of it: a :class:`Pusher` that makes a random
24-byte header and encrypts messages, and a :class:`Puller` that takes the remote header
and decrypts them in order. Keeping the interface this small lets a faster implementation
(one built on OpenSSL's ChaCha20 and Poly1305) be swapped in without touching the state
machine: it only has to offer the same constructors, ``header``, ``push`` and ``pull``.

This one calls libsodium (through PyNaCl's cffi module) directly rather than through
``nacl.bindings`` because those wrappers accept only ``bytes``: decrypting straight out of
the receive buffer's ``memoryview`` saves a copy of every frame.
"""

from __future__ import annotations

from typing import Final

from nacl._sodium import ffi, lib

from ..errors import RemoteProtocolError

__all__ = ("ABYTES", "HEADERBYTES", "KEYBYTES", "Puller", "Pusher")

#: Bytes a message grows by: a 1-byte encrypted tag and a 16-byte Poly1305 MAC.
ABYTES: Final[int] = lib.crypto_secretstream_xchacha20poly1305_abytes()
HEADERBYTES: Final[int] = lib.crypto_secretstream_xchacha20poly1305_headerbytes()
KEYBYTES: Final[int] = lib.crypto_secretstream_xchacha20poly1305_keybytes()
_STATEBYTES: Final[int] = lib.crypto_secretstream_xchacha20poly1305_statebytes()
_TAG_MESSAGE: Final[int] = lib.crypto_secretstream_xchacha20poly1305_tag_message()

Buffer = bytes | bytearray | memoryview


def _check_key(key: bytes) -> bytes:
    if len(key) != KEYBYTES:
        raise ValueError(f"a secretstream key is {KEYBYTES} bytes, got {len(key)}")
    return bytes(key)


class Pusher:
    """The sending half: ``header`` goes to the peer once, then ``push`` each message.

    Every message is pushed with the plain MESSAGE tag, as ``@hyperswarm/secret-stream``.
    """

    __slots__ = ("_out", "_out_size", "_state", "header")

    header: bytes

    def __init__(self, key: bytes) -> None:
        self._state = ffi.new("unsigned char[]", _STATEBYTES)
        header = ffi.new("unsigned char[]", HEADERBYTES)
        lib.crypto_secretstream_xchacha20poly1305_init_push(self._state, header, _check_key(key))
        self.header = bytes(ffi.buffer(header, HEADERBYTES))
        self._out_size = 0
        self._out = ffi.NULL

    def push(self, plaintext: Buffer) -> bytes:
        """Encrypt the next message: ``len(plaintext) + ABYTES`` bytes of ciphertext."""
        size = len(plaintext)
        if size + ABYTES > self._out_size:
            self._out_size = max(size + ABYTES, 1024)
            self._out = ffi.new("unsigned char[]", self._out_size)
        source = plaintext if isinstance(plaintext, bytes) else ffi.from_buffer(plaintext)
        lib.crypto_secretstream_xchacha20poly1305_push(
            self._state, self._out, ffi.NULL, source, size, ffi.NULL, 0, _TAG_MESSAGE
        )
        return ffi.buffer(self._out, size + ABYTES)[:]  # type: ignore[no-any-return]


class Puller:
    """The receiving half, started from the peer's header; ``pull`` each message in order.

    Any tag is accepted (the peer's library handles rekeying inside libsodium), as the
    JavaScript implementation does.
    """

    __slots__ = ("_out", "_out_size", "_state", "_tag")

    def __init__(self, key: bytes, header: Buffer) -> None:
        if len(header) != HEADERBYTES:
            raise ValueError(f"a secretstream header is {HEADERBYTES} bytes, got {len(header)}")
        self._state = ffi.new("unsigned char[]", _STATEBYTES)
        self._tag = ffi.new("unsigned char *")
        lib.crypto_secretstream_xchacha20poly1305_init_pull(
            self._state, bytes(header), _check_key(key)
        )
        self._out_size = 0
        self._out = ffi.NULL

    def pull(self, ciphertext: Buffer) -> bytes:
        """Decrypt the next message.

        Raises :class:`~p2pswarm.errors.RemoteProtocolError` when it is shorter than
        ``ABYTES`` or fails authentication. A failed pull leaves the state unchanged, but
        the stream is broken anyway: the caller drops the connection.
        """
        size = len(ciphertext)
        if size < ABYTES:
            raise RemoteProtocolError("invalid message received: shorter than its MAC")
        if size > self._out_size:
            self._out_size = max(size, 1024)
            self._out = ffi.new("unsigned char[]", self._out_size)
        source = ciphertext if isinstance(ciphertext, bytes) else ffi.from_buffer(ciphertext)
        rc = lib.crypto_secretstream_xchacha20poly1305_pull(
            self._state, self._out, ffi.NULL, self._tag, source, size, ffi.NULL, 0
        )
        del source  # release the C view of the caller's buffer before anything can raise
        if rc != 0:
            raise RemoteProtocolError("data frame failed authentication")
        return ffi.buffer(self._out, size - ABYTES)[:]  # type: ignore[no-any-return]
