"""``crypto_secretstream_xchacha20poly1305`` on OpenSSL's ChaCha20 and Poly1305, for bulk data.

libsodium's portable ChaCha20 runs at about a third of OpenSSL's vectorised one on the
machines this project targets, and bulk transfer spends most of its CPU there. This module
produces exactly libsodium's bytes (a test proves it against PyNaCl) while doing the heavy
work through ``cryptography``; messages shorter than ``threshold`` still go to libsodium,
because for them the few extra Python calls of this path cost more than they save.

Both paths work on one state, laid out as libsodium's ``crypto_secretstream`` state
(key 32 | counter 4, little-endian | inonce 8 | padding 8), so they can alternate message by
message. What one message does to that state, as libsodium does it:

1. The ChaCha20-IETF nonce is counter | inonce. Keystream block 0 gives the Poly1305 key.
2. A 64-byte block holding the tag byte and zeros is encrypted with block 1; its first
   byte goes on the wire, and the whole encrypted block is MACed.
3. The message is encrypted from block 2 and MACed, followed by ``mlen % 16`` zero bytes
   (libsodium's padding, not the usual ``-mlen % 16``), then the little-endian 64-bit
   lengths of the additional data (always 0 here) and of block + message.
4. The inonce is XORed with the first 8 bytes of the MAC and the counter incremented; a
   REKEY tag or a counter that wraps to 0 derives a new key and inonce from the keystream
   and resets the counter to 1.

When ``mlen % 8 == 0`` the two paddings agree, so step 2-3 is exactly the IETF
ChaCha20-Poly1305 AEAD (no additional data) over the tag block followed by the message:
one OpenSSL call does both passes. 64 KiB writes take this path. Other lengths use raw
ChaCha20 and Poly1305.

HChaCha20 (the header's key derivation) is not exposed by PyNaCl or ``cryptography``; it
is one ChaCha20 block with the input words subtracted again (:func:`hchacha20`).
"""

from __future__ import annotations

import os
import struct
from typing import Final

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.poly1305 import Poly1305
from nacl._sodium import ffi, lib

from ..errors import RemoteProtocolError

__all__ = (
    "ABYTES",
    "DEFAULT_THRESHOLD",
    "HEADERBYTES",
    "KEYBYTES",
    "TAG_FINAL",
    "TAG_MESSAGE",
    "TAG_PUSH",
    "TAG_REKEY",
    "Puller",
    "Pusher",
    "hchacha20",
)

ABYTES: Final = 17
HEADERBYTES: Final = 24
KEYBYTES: Final = 32
TAG_MESSAGE: Final = 0
TAG_PUSH: Final = 1
TAG_REKEY: Final = 2
TAG_FINAL: Final = TAG_PUSH | TAG_REKEY

#: Messages at least this long take the OpenSSL path; shorter ones go to libsodium.
#: ``bench/secretstream.py`` on the project's 2-core machine: push+pull of 64 B takes 2.1 us
#: in libsodium against 5.5 us here, 4 KiB 7.3 against 8.4 us, 6 KiB ties at 9.7 us, and
#: 64 KiB takes 87 against 41 us (720 against 1,510 MiB/s).
DEFAULT_THRESHOLD: Final = 6144

_STATEBYTES: Final = 52
_KEY: Final = slice(0, 32)
_NONCE: Final = slice(32, 44)
_COUNTER_INONCE: Final = struct.Struct("<IQ")
_MAC_HEAD: Final = struct.Struct("<Q")
_LENGTHS: Final = struct.Struct("<QQ")
_SIGMA: Final = struct.unpack("<4I", b"expand 32-byte k")
_WORDS16: Final = struct.Struct("<16I")
_WORDS8: Final = struct.Struct("<8I")
_WORDS4: Final = struct.Struct("<4I")
_ZEROS: Final = bytes(128)
_MASK32: Final = 0xFFFFFFFF
#: Above this the AEAD shortcut's two extra copies cost more than its one saved call
#: (measured: equal at about 48 KiB, raw ChaCha20 + Poly1305 10 % faster at 64 KiB).
_AEAD_MAX: Final = 40960

Buffer = bytes | bytearray | memoryview

assert lib.crypto_secretstream_xchacha20poly1305_statebytes() == _STATEBYTES
assert lib.crypto_secretstream_xchacha20poly1305_abytes() == ABYTES


def hchacha20(key: bytes, nonce16: bytes) -> bytes:
    """libsodium's ``crypto_core_hchacha20(key, nonce16)``, from one ChaCha20 block.

    A ChaCha20 block is the permuted state plus the input state; HChaCha20 is words 0-3 and
    12-15 of the permuted state. With the 16-byte input placed in words 12-15 (which is what
    ``cryptography``'s 16-byte ChaCha20 "nonce" is), subtracting the known constants and
    input words from the block gives it back.
    """
    block = Cipher(algorithms.ChaCha20(key, nonce16), mode=None).encryptor().update(_ZEROS[:64])
    words = _WORDS16.unpack(block)
    inputs = _WORDS4.unpack(nonce16)
    return _WORDS8.pack(
        *((words[i] - _SIGMA[i]) & _MASK32 for i in range(4)),
        *((words[12 + i] - inputs[i]) & _MASK32 for i in range(4)),
    )


def _check_key(key: Buffer) -> bytes:
    if len(key) != KEYBYTES:
        raise ValueError(f"a secretstream key is {KEYBYTES} bytes, got {len(key)}")
    return bytes(key)


class _Stream:
    """The shared state and the bookkeeping after each message (steps 1 and 4)."""

    __slots__ = ("_aead", "_key", "_out", "_out_size", "_state", "_tag", "_view", "threshold")

    def __init__(self, key: bytes, header: bytes, threshold: int) -> None:
        self._state = ffi.new("unsigned char[]", _STATEBYTES)
        self._view = memoryview(ffi.buffer(self._state))
        self._tag = ffi.new("unsigned char *")
        self._out_size = 0
        self._out = ffi.NULL
        self._view[_KEY] = hchacha20(key, header[:16])
        _COUNTER_INONCE.pack_into(self._view, 32, 1, _MAC_HEAD.unpack_from(header, 16)[0])
        self._key = b""
        self._aead = self._cipher()
        self.threshold = threshold

    def _cipher(self) -> ChaCha20Poly1305:
        # The key changes only on rekey (possibly inside libsodium): cache the AEAD per key.
        view = self._view
        if view[_KEY] != self._key:
            self._key = bytes(view[_KEY])
            self._aead = ChaCha20Poly1305(self._key)
        return self._aead

    def _advance(self, mac: Buffer, tag: int) -> None:
        view = self._view
        counter, inonce = _COUNTER_INONCE.unpack_from(view, 32)
        counter = (counter + 1) & _MASK32
        inonce ^= _MAC_HEAD.unpack_from(mac)[0]
        _COUNTER_INONCE.pack_into(view, 32, counter, inonce)
        if tag & TAG_REKEY or counter == 0:
            self._rekey()

    def _rekey(self) -> None:
        view = self._view
        nonce = bytes(view[_NONCE])
        key = bytes(view[_KEY])
        stream = Cipher(algorithms.ChaCha20(key, bytes(4) + nonce), mode=None).encryptor()
        new = stream.update(key + nonce[4:])
        view[_KEY] = new[:32]
        _COUNTER_INONCE.pack_into(view, 32, 1, _MAC_HEAD.unpack_from(new, 32)[0])
        self._cipher()

    def _buffer(self, size: int) -> object:
        """A reusable output buffer for libsodium, at least ``size`` bytes."""
        if size > self._out_size:
            self._out_size = max(size, 1024)
            self._out = ffi.new("unsigned char[]", self._out_size)
        return self._out

    def _keystream(self, nonce: bytes) -> tuple[CipherContext, bytes]:
        """A ChaCha20-IETF stream positioned at block 2, and its blocks 0 and 1."""
        stream = Cipher(algorithms.ChaCha20(self._key, bytes(4) + nonce), mode=None).encryptor()
        return stream, stream.update(_ZEROS)


def _mac_trailer(size: int) -> bytes:
    return _ZEROS[: size & 15] + _LENGTHS.pack(0, 64 + size)


class Pusher(_Stream):
    """The sending half: ``header`` goes to the peer once, then ``push`` each message."""

    __slots__ = ("header",)

    header: bytes

    def __init__(self, key: bytes, *, threshold: int = DEFAULT_THRESHOLD) -> None:
        self.header = os.urandom(HEADERBYTES)
        super().__init__(_check_key(key), self.header, threshold)

    def push(self, plaintext: Buffer, tag: int = TAG_MESSAGE) -> bytes:
        """Encrypt the next message: ``len(plaintext) + ABYTES`` bytes of ciphertext.

        ``tag`` is libsodium's message tag; ``@hyperswarm/secret-stream`` only ever sends
        the plain MESSAGE tag.
        """
        size = len(plaintext)
        if size < self.threshold:
            return self._push_libsodium(plaintext, size, tag)
        aead = self._cipher()
        nonce = bytes(self._view[_NONCE])
        if size & 7 == 0 and size <= _AEAD_MAX:
            block = bytearray(64 + size)
            block[0] = tag
            block[64:] = plaintext
            sealed = bytearray(80 + size)
            aead.encrypt_into(nonce, block, None, sealed)
            sealed[63] = sealed[0]
            out = bytes(memoryview(sealed)[63:])
        else:
            stream, keys = self._keystream(nonce)
            out_buffer = bytearray(size + ABYTES)
            out_buffer[0] = keys[64] ^ tag
            body = memoryview(out_buffer)[1 : 1 + size]
            stream.update_into(plaintext, body)
            poly = Poly1305(keys[:32])
            poly.update(out_buffer[0:1] + keys[65:128])
            poly.update(body)
            poly.update(_mac_trailer(size))
            out_buffer[1 + size :] = poly.finalize()
            out = bytes(out_buffer)
        self._advance(out[-16:], tag)
        return out

    def _push_libsodium(self, plaintext: Buffer, size: int, tag: int) -> bytes:
        out = self._buffer(size + ABYTES)
        source = plaintext if isinstance(plaintext, bytes) else ffi.from_buffer(plaintext)
        lib.crypto_secretstream_xchacha20poly1305_push(
            self._state, out, ffi.NULL, source, size, ffi.NULL, 0, tag
        )
        return ffi.buffer(out, size + ABYTES)[:]  # type: ignore[no-any-return]


class Puller(_Stream):
    """The receiving half, started from the peer's header; ``pull`` each message in order.

    Any tag is accepted and REKEY is honoured, as libsodium does; the tag of the last
    message pulled is ``last_tag``.
    """

    __slots__ = ("last_tag",)

    def __init__(self, key: bytes, header: Buffer, *, threshold: int = DEFAULT_THRESHOLD) -> None:
        if len(header) != HEADERBYTES:
            raise ValueError(f"a secretstream header is {HEADERBYTES} bytes, got {len(header)}")
        super().__init__(_check_key(key), bytes(header), threshold)
        self.last_tag = TAG_MESSAGE

    def pull(self, ciphertext: Buffer) -> bytes:
        """Decrypt the next message.

        Raises :class:`~p2pswarm.errors.RemoteProtocolError` when it is shorter than
        ``ABYTES`` or fails authentication. A failed pull leaves the state unchanged, but
        the stream is broken anyway: the caller drops the connection.
        """
        total = len(ciphertext)
        if total < ABYTES:
            raise RemoteProtocolError("invalid message received: shorter than its MAC")
        size = total - ABYTES
        if size < self.threshold:
            return self._pull_libsodium(ciphertext, total)
        aead = self._cipher()
        nonce = bytes(self._view[_NONCE])
        source = memoryview(ciphertext)
        mac = bytes(source[total - 16 :])
        if size & 7 == 0 and size <= _AEAD_MAX:
            # Block 1's keystream: the AEAD's encryption of 64 zero bytes (its MAC unused).
            keys = aead.encrypt(nonce, _ZEROS[:64], None)
            tag = keys[0] ^ source[0]
            sealed = bytearray(80 + size)
            sealed[0] = source[0]
            sealed[1:64] = keys[1:64]
            sealed[64:] = source[1:]
            opened = bytearray(64 + size)
            try:
                aead.decrypt_into(nonce, sealed, None, opened)
            except InvalidTag:
                raise RemoteProtocolError("data frame failed authentication") from None
            plaintext = bytes(memoryview(opened)[64:])
        else:
            stream, keys = self._keystream(nonce)
            tag = keys[64] ^ source[0]
            body = source[1 : 1 + size]
            poly = Poly1305(keys[:32])
            poly.update(bytes(source[0:1]) + keys[65:128])
            poly.update(body)
            poly.update(_mac_trailer(size))
            try:
                poly.verify(mac)
            except InvalidSignature:
                raise RemoteProtocolError("data frame failed authentication") from None
            plaintext = stream.update(body)
        self._advance(mac, tag)
        self.last_tag = tag
        return plaintext

    def _pull_libsodium(self, ciphertext: Buffer, total: int) -> bytes:
        out = self._buffer(total - ABYTES)
        source = ciphertext if isinstance(ciphertext, bytes) else ffi.from_buffer(ciphertext)
        rc = lib.crypto_secretstream_xchacha20poly1305_pull(
            self._state, out, ffi.NULL, self._tag, source, total, ffi.NULL, 0
        )
        if rc != 0:
            raise RemoteProtocolError("data frame failed authentication")
        self.last_tag = self._tag[0]
        return ffi.buffer(out, total - ABYTES)[:]  # type: ignore[no-any-return]
