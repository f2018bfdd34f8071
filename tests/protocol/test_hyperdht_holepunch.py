"""PEER_HOLEPUNCH values and sealed round payloads: round trips, and hostile input gets a
typed error (or None from SecurePayload.decrypt), never anything else."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, strategies as st

from p2pswarm.errors import CompactDecodeError
from p2pswarm.protocol.compact import IPv4Address
from p2pswarm.protocol.hyperdht_holepunch import (
    MAX_HOLEPUNCH_ADDRESSES,
    Holepunch,
    HolepunchPayload,
    SecurePayload,
    decode_holepunch,
    decode_holepunch_payload,
    encode_holepunch,
    encode_holepunch_payload,
)

addresses = st.builds(
    IPv4Address,
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    st.integers(0, 65535),
)
tokens = st.none() | st.binary(min_size=32, max_size=32)
payloads = st.builds(
    HolepunchPayload,
    st.integers(0, 2**32),
    st.integers(0, 3),
    st.integers(0, 2**32),
    st.booleans(),
    st.booleans(),
    st.none() | st.lists(addresses, max_size=4).map(tuple),
    st.none() | addresses,
    tokens,
    tokens,
)
messages = st.builds(
    Holepunch,
    st.integers(0, 4),
    st.integers(0, 2**32),
    st.binary(max_size=300),
    st.none() | addresses,
)


@given(payloads)
def test_payload_round_trip(payload: HolepunchPayload) -> None:
    assert decode_holepunch_payload(encode_holepunch_payload(payload)) == payload


@given(messages)
def test_message_round_trip(message: Holepunch) -> None:
    assert decode_holepunch(encode_holepunch(message)) == message


@given(st.binary(max_size=400))
def test_hostile_bytes_are_a_typed_error(data: bytes) -> None:
    for decode in (decode_holepunch, decode_holepunch_payload):
        with contextlib.suppress(CompactDecodeError):
            decode(data)


@given(payloads, st.binary(min_size=1, max_size=8), st.integers(0, 200))
def test_sealed_payloads_open_only_unchanged(
    payload: HolepunchPayload, flip: bytes, at: int
) -> None:
    box = SecurePayload(bytes(32))
    sealed = bytearray(box.encrypt(payload))
    assert box.decrypt(bytes(sealed)) == payload
    i = at % len(sealed)
    sealed[i] ^= flip[0] or 1
    assert box.decrypt(bytes(sealed)) is None
    assert SecurePayload(bytes([1]) * 32).decrypt(box.encrypt(payload)) is None


@given(st.binary(max_size=200))
def test_garbage_never_opens(data: bytes) -> None:
    assert SecurePayload(bytes(32)).decrypt(data) is None


def test_address_arrays_are_bounded() -> None:
    too_many = (IPv4Address("1.1.1.1", 1),) * (MAX_HOLEPUNCH_ADDRESSES + 1)
    data = encode_holepunch_payload(HolepunchPayload(addresses=too_many))
    with pytest.raises(CompactDecodeError):
        decode_holepunch_payload(data)


def test_tokens_are_per_host_and_per_secret() -> None:
    a, b = SecurePayload(bytes(32)), SecurePayload(bytes(32))
    assert a.token("10.0.0.1") == a.token("10.0.0.1") != a.token("10.0.0.2")
    assert a.token("10.0.0.1") != b.token("10.0.0.1")  # local secrets differ
