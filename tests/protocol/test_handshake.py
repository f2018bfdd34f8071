from __future__ import annotations

import hashlib

import nacl.bindings as sodium
import pytest

from p2pswarm.errors import HandshakeError
from p2pswarm.keys import KeyPair
from p2pswarm.protocol import HELLO_VERSION, MAX_HELLO_TOPICS, Hello, decode_hello, encode_hello
from p2pswarm.protocol._noise_ed25519 import Ed25519DH, Ed25519KeyPair, ed25519_scalar
from p2pswarm.protocol.handshake import NoiseHandshake, Pattern, detect_pattern

A = KeyPair.from_seed(b"\x01" * 32)
B = KeyPair.from_seed(b"\x02" * 32)


def run(pattern: Pattern, responder_key: bytes | None = None) -> tuple[NoiseHandshake, ...]:
    initiator = NoiseHandshake(
        pattern,
        initiator=True,
        key_pair=A,
        remote_public_key=responder_key if pattern is Pattern.IK else None,
    )
    responder = NoiseHandshake(pattern, initiator=False, key_pair=B)
    writer, reader = initiator, responder
    while not (initiator.complete and responder.complete):
        reader.read_message(writer.write_message())
        writer, reader = reader, writer
    return initiator, responder


@pytest.mark.parametrize("pattern", list(Pattern))
def test_both_sides_agree_on_keys_hash_and_identities(pattern: Pattern) -> None:
    initiator, responder = run(pattern, B.public_key)
    assert initiator.tx == responder.rx and initiator.rx == responder.tx
    assert len(initiator.tx) == 32 and initiator.tx != initiator.rx
    assert initiator.handshake_hash == responder.handshake_hash
    assert len(initiator.handshake_hash) == 64
    assert initiator.remote_public_key == B.public_key
    assert responder.remote_public_key == A.public_key


def test_wrong_responder_key_fails_ik_with_a_handshake_error() -> None:
    other = KeyPair.generate()
    initiator = NoiseHandshake(
        Pattern.IK, initiator=True, key_pair=A, remote_public_key=other.public_key
    )
    responder = NoiseHandshake(Pattern.IK, initiator=False, key_pair=B)
    with pytest.raises(HandshakeError):
        responder.read_message(initiator.write_message())
    # Dead after a failure: no further use, however it is tried.
    with pytest.raises(HandshakeError):
        responder.write_message()
    with pytest.raises(HandshakeError):
        responder.read_message(b"\x00" * 32)


@pytest.mark.parametrize("pattern", list(Pattern))
def test_tampered_message_fails(pattern: Pattern) -> None:
    initiator = NoiseHandshake(pattern, initiator=True, key_pair=A, remote_public_key=B.public_key)
    responder = NoiseHandshake(pattern, initiator=False, key_pair=B)
    first = initiator.write_message(b"")
    responder.read_message(first)
    second = bytearray(responder.write_message(b""))
    second[-1] ^= 1
    with pytest.raises(HandshakeError):
        initiator.read_message(second)


@pytest.mark.parametrize("garbage", [b"", b"\x00", b"\xff" * 31, b"\x00" * 32, b"\x01" * 200])
def test_garbage_message_2_is_a_handshake_error(garbage: bytes) -> None:
    initiator = NoiseHandshake(Pattern.XX, initiator=True, key_pair=A)
    initiator.write_message(b"")
    with pytest.raises(HandshakeError):
        initiator.read_message(garbage)


def test_reading_out_of_turn_fails() -> None:
    initiator = NoiseHandshake(Pattern.XX, initiator=True, key_pair=A)
    with pytest.raises(HandshakeError):
        initiator.read_message(b"\x00" * 32)


def test_ik_initiator_needs_the_responder_key() -> None:
    with pytest.raises(ValueError):
        NoiseHandshake(Pattern.IK, initiator=True, key_pair=A)


def test_pattern_detection_by_first_message_size() -> None:
    assert detect_pattern(32) is Pattern.XX
    assert detect_pattern(96) is Pattern.IK
    assert detect_pattern(2000) is Pattern.IK
    for size in (0, 31, 33, 95):
        with pytest.raises(HandshakeError):
            detect_pattern(size)


def test_ed25519_dh_matches_between_both_sides_and_is_not_x25519() -> None:
    dh = Ed25519DH()
    a = Ed25519KeyPair.from_private_bytes(A.seed)
    b = Ed25519KeyPair.from_private_bytes(B.seed)
    assert a.public_bytes == A.public_key
    shared = dh.dh(a.private, b.public)
    assert shared == dh.dh(b.private, a.public)
    x25519 = sodium.crypto_scalarmult(
        sodium.crypto_sign_ed25519_sk_to_curve25519(A.secret_key),
        sodium.crypto_sign_ed25519_pk_to_curve25519(B.public_key),
    )
    assert shared != x25519


def test_scalar_is_clamped_sha512_of_the_seed() -> None:
    digest = bytearray(hashlib.sha512(A.seed).digest()[:32])
    digest[0] &= 248
    digest[31] = (digest[31] & 127) | 64
    assert ed25519_scalar(A.seed) == bytes(digest)
    assert ed25519_scalar(A.seed) == sodium.crypto_sign_ed25519_sk_to_curve25519(A.secret_key)


# -- hello ------------------------------------------------------------------------------------


def test_hello_round_trip() -> None:
    topics = tuple(bytes([i]) * 32 for i in range(3))
    encoded = encode_hello(topics)
    assert encoded[0] == HELLO_VERSION and encoded[1] == 3 and len(encoded) == 2 + 96
    assert decode_hello(encoded) == Hello(HELLO_VERSION, topics)
    assert decode_hello(encode_hello()) == Hello(HELLO_VERSION, ())


def test_empty_payload_is_a_plain_secret_stream_peer() -> None:
    assert decode_hello(b"") is None


def test_hello_bounds_on_encode() -> None:
    with pytest.raises(ValueError):
        encode_hello([b"\x00" * 32] * (MAX_HELLO_TOPICS + 1))
    with pytest.raises(ValueError):
        encode_hello([b"short"])
    with pytest.raises(TypeError):
        encode_hello(["a topic name"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "payload",
    [
        bytes([2, 0]),  # unknown version
        bytes([0]),
        bytes([HELLO_VERSION]),  # truncated
        bytes([HELLO_VERSION, 1]) + b"\x00" * 31,  # short topic
        bytes([HELLO_VERSION, 1]) + b"\x00" * 33,  # trailing byte
        bytes([HELLO_VERSION, MAX_HELLO_TOPICS + 1]) + b"\x00" * 32 * (MAX_HELLO_TOPICS + 1),
    ],
)
def test_bad_hello_is_a_handshake_error(payload: bytes) -> None:
    with pytest.raises(HandshakeError):
        decode_hello(payload)
