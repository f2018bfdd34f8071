"""The blind-relay message codec: round trips, JS's bitfield forms, and hostile bytes (each
a typed :class:`~p2pswarm.errors.RelayMessageError`, never anything else)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, strategies as st

from p2pswarm.errors import CodecError, RelayMessageError
from p2pswarm.protocol.blind_relay import (
    Pair,
    Unpair,
    decode_pair,
    decode_unpair,
    encode_pair,
    encode_unpair,
)
from p2pswarm.relay import PAIR_CODEC, UNPAIR_CODEC

TOKEN = bytes(range(32))

pairs = st.builds(
    Pair,
    st.booleans(),
    st.binary(min_size=32, max_size=32),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, (1 << 53) - 1),
)


def test_the_layout_is_js_s() -> None:
    data = encode_pair(Pair(True, TOKEN, 0x1234, 0))
    assert data == b"\x01" + TOKEN + b"\xfd\x34\x12" + b"\x00"
    assert encode_unpair(Unpair(TOKEN)) == b"\x00" + TOKEN


@given(pairs)
def test_pair_round_trips(pair: Pair) -> None:
    assert decode_pair(encode_pair(pair)) == pair
    assert PAIR_CODEC.decode(PAIR_CODEC.encode(pair)) == pair


@given(st.binary(min_size=32, max_size=32))
def test_unpair_round_trips(token: bytes) -> None:
    assert decode_unpair(encode_unpair(Unpair(token))) == Unpair(token)
    assert UNPAIR_CODEC.decode(UNPAIR_CODEC.encode(Unpair(token))) == Unpair(token)


def test_the_long_bitfield_forms_js_accepts() -> None:
    body = TOKEN + b"\x05\x00"
    assert decode_pair(b"\xfd\x01\x00" + body).is_initiator
    assert not decode_pair(b"\xfe\x00\x00\x00\x00" + body).is_initiator
    assert decode_pair(b"\xff\x03" + bytes(7) + body).is_initiator
    assert decode_pair(b"\x02" + body) == Pair(False, TOKEN, 5, 0)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01",
        b"\x01" + TOKEN[:31],  # a short token
        b"\x01" + TOKEN,  # no id
        b"\x01" + TOKEN + b"\x05",  # no seq
        b"\x01" + TOKEN + b"\x05\x00\x00",  # trailing
        b"\x01" + TOKEN + b"\xff" + (1 << 32).to_bytes(8, "little") + b"\x00",  # id > u32
        b"\x01" + TOKEN + b"\xfd\x05\x00\x00",  # non-canonical id
        b"\xfd\x01",  # a truncated long bitfield
    ],
)
def test_bad_pairs_are_typed_errors(data: bytes) -> None:
    with pytest.raises(RelayMessageError):
        decode_pair(data)


@pytest.mark.parametrize("data", [b"", b"\x00" + TOKEN[:5], b"\x00" + TOKEN + b"\x00"])
def test_bad_unpairs_are_typed_errors(data: bytes) -> None:
    with pytest.raises(RelayMessageError):
        decode_unpair(data)


def test_a_relay_message_error_closes_the_connection_as_a_codec_error() -> None:
    assert issubclass(RelayMessageError, CodecError)


@pytest.mark.parametrize("token", [b"", b"x" * 31, b"x" * 33])
def test_tokens_of_the_wrong_length_are_refused_on_the_way_out(token: bytes) -> None:
    with pytest.raises(ValueError):
        Pair(True, token, 1)
    with pytest.raises(ValueError):
        Unpair(token)


@given(st.binary(max_size=80))
def test_any_bytes_decode_or_raise_the_typed_error(data: bytes) -> None:
    for decode in (decode_pair, decode_unpair):
        with contextlib.suppress(RelayMessageError):
            decode(data)
