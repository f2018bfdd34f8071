"""Signed records: canonical bytes, signatures, replay protection, strict decoding."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings, strategies as st

from p2pswarm.dht.records import (
    ANNOUNCE_DOMAIN,
    RecordKind,
    create_record,
    create_unannounce,
    decode_record,
    decode_unannounce,
    target_for,
)
from p2pswarm.errors import InvalidRecordError
from p2pswarm.keys import KeyPair, topic
from p2pswarm.peer_record import AddressKind, PeerAddress

KEY = KeyPair.from_seed(bytes(range(32)))
TOPIC = topic("records")


def make(**overrides: object) -> bytes:
    options: dict[str, object] = {"seq": 7, "expiry": 1_800_000_000.5}
    options.update(overrides)
    return create_record(KEY, TOPIC, 4000, **options).encode()  # type: ignore[arg-type]


def test_round_trip() -> None:
    relay = PeerAddress("127.0.0.1", 5000, AddressKind.RELAY)
    record = decode_record(make(addresses=(relay,)))
    assert (record.kind, record.topic, record.public_key) == (
        RecordKind.TOPIC,
        TOPIC,
        KEY.public_key,
    )
    assert (record.seq, record.expiry, record.port) == (7, 1_800_000_000.5, 4000)
    assert record.addresses == (relay,)
    assert record.target == target_for(TOPIC)
    peer = record.to_peer_record("127.0.0.1")
    assert peer.addresses == (PeerAddress("127.0.0.1", 4000), relay)
    assert peer.topic == TOPIC and peer.seq == 7


def test_forged_signature_is_rejected() -> None:
    data = bytearray(make())
    data[-1] ^= 1
    with pytest.raises(InvalidRecordError, match="signature"):
        decode_record(bytes(data))


def test_signature_by_another_key_is_rejected() -> None:
    data = make()
    forged = data[:-64] + KeyPair.generate().sign(ANNOUNCE_DOMAIN + data[:-64])
    with pytest.raises(InvalidRecordError, match="signature"):
        decode_record(forged)


def test_replay_under_another_topic_fails_verification() -> None:
    data = bytearray(make())
    data[2:34] = topic("some other topic")
    with pytest.raises(InvalidRecordError, match="signature"):
        decode_record(bytes(data))


@pytest.mark.parametrize(("offset", "what"), [(66, "seq"), (74, "expiry"), (82, "port")])
def test_every_signed_field_is_covered(offset: int, what: str) -> None:
    data = bytearray(make())
    data[offset] ^= 0x40
    with pytest.raises(InvalidRecordError, match="signature"):
        decode_record(bytes(data))


def test_an_announce_signature_is_no_unannounce_signature() -> None:
    unannounce = create_unannounce(KEY, TOPIC, seq=9)
    decoded = decode_unannounce(unannounce.encode())
    assert (decoded.topic, decoded.public_key, decoded.seq) == (TOPIC, KEY.public_key, 9)
    # Same fixed prefix, other domain: the announce signature must not pass as removal.
    record = make()
    fake = unannounce.signed + record[-64:]
    with pytest.raises(InvalidRecordError, match="signature"):
        decode_unannounce(fake)
    with pytest.raises(InvalidRecordError, match="length"):
        decode_unannounce(record)


def test_unknown_address_kinds_are_skipped_not_rejected() -> None:
    fixed = struct.pack("!BB32s32sQQHB", 1, 1, TOPIC, KEY.public_key, 1, 2_000_000_000_000, 80, 2)
    unknown = bytes([9, 5]) + b"hello"
    relay = bytes([2, 7, 4, 127, 0, 0, 1]) + (81).to_bytes(2, "big")
    signed = fixed + unknown + relay
    record = decode_record(signed + KEY.sign(ANNOUNCE_DOMAIN + signed))
    assert record.addresses == (PeerAddress("127.0.0.1", 81, AddressKind.RELAY),)


@pytest.mark.parametrize(
    ("count", "entries", "reason"),
    [
        (5, b"", "addresses"),
        (1, b"", "bounds|truncated|length|malformed"),
        (1, bytes([2, 40]) + bytes(40), "bounds"),
        (1, bytes([2, 3, 4, 1, 2]), "malformed"),
        (1, bytes([2, 7, 4, 127, 0, 0, 1, 0, 0]), "port 0"),
    ],
)
def test_malformed_address_lists(count: int, entries: bytes, reason: str) -> None:
    fixed = struct.pack("!BB32s32sQQHB", 1, 1, TOPIC, KEY.public_key, 1, 2, 80, count)
    signed = fixed + entries
    with pytest.raises(InvalidRecordError, match=reason):
        decode_record(signed + KEY.sign(ANNOUNCE_DOMAIN + signed))


def test_bad_versions_kinds_and_lengths() -> None:
    data = make()
    with pytest.raises(InvalidRecordError, match="truncated"):
        decode_record(data[:100])
    with pytest.raises(InvalidRecordError, match="version"):
        decode_record(b"\x02" + data[1:])
    with pytest.raises(InvalidRecordError, match="kind"):
        decode_record(data[:1] + b"\x07" + data[2:])
    with pytest.raises(InvalidRecordError, match="length"):
        decode_record(data + b"\x00")


def test_peer_records_live_under_their_own_key() -> None:
    record = decode_record(
        create_record(KEY, KEY.public_key, 1, seq=1, expiry=2e9, kind=RecordKind.PEER).encode()
    )
    assert record.to_peer_record("127.0.0.1").topic is None
    with pytest.raises(ValueError):
        create_record(KEY, TOPIC, 1, seq=1, expiry=2e9, kind=RecordKind.PEER)
    fixed = struct.pack("!BB32s32sQQHB", 1, 2, TOPIC, KEY.public_key, 1, 2, 80, 0)
    with pytest.raises(InvalidRecordError, match="own public key"):
        decode_record(fixed + KEY.sign(ANNOUNCE_DOMAIN + fixed))


def test_create_checks_its_arguments() -> None:
    with pytest.raises(ValueError):
        create_record(KEY, b"short", 1, seq=1, expiry=1)
    with pytest.raises(ValueError):
        create_record(KEY, TOPIC, 70000, seq=1, expiry=1)
    with pytest.raises(ValueError):
        create_record(KEY, TOPIC, 1, seq=-1, expiry=1)
    with pytest.raises(ValueError):
        create_record(KEY, TOPIC, 1, seq=1, expiry=1, addresses=(PeerAddress("127.0.0.1", 1),) * 5)


@given(st.binary(max_size=600))
@settings(max_examples=500, deadline=None)
def test_decoder_fuzz_raises_only_the_typed_error(data: bytes) -> None:
    with contextlib.suppress(InvalidRecordError):
        decode_record(data)
    with contextlib.suppress(InvalidRecordError):
        decode_unannounce(data)


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_any_single_byte_change_breaks_the_record(data: st.DataObject) -> None:
    encoded = bytearray(make(addresses=(PeerAddress("127.0.0.1", 9, AddressKind.RELAY),)))
    index = data.draw(st.integers(0, len(encoded) - 1))
    encoded[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(InvalidRecordError):
        decode_record(bytes(encoded))


def test_a_remembered_signature_never_covers_a_changed_record() -> None:
    good = make(seq=99)
    decode_record(good)  # verified, so remembered
    decode_record(good)  # and accepted again from memory
    for position in (-1, 40):  # the signature, then a signed byte (the public key)
        data = bytearray(good)
        data[position] ^= 1
        with pytest.raises(InvalidRecordError, match="signature"):
            decode_record(bytes(data))


def test_remembered_signatures_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import p2pswarm.dht.records as records

    monkeypatch.setattr(records, "_VERIFIED", {})
    monkeypatch.setattr(records, "_VERIFIED_MAX", 8)
    for seq in range(20):
        decode_record(make(seq=seq))
    assert len(records._VERIFIED) == 8
    decode_unannounce(create_unannounce(KEY, TOPIC, seq=3).encode())
    assert len(records._VERIFIED) == 8
