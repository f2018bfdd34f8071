"""The HyperDHT value codecs: round trips, strictness, and Hypothesis over every decoder."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from p2pswarm.errors import CompactDecodeError
from p2pswarm.protocol.compact import IPv4Address, Writer
from p2pswarm.protocol.hyperdht_messages import (
    MAX_MUTABLE_VALUE_SIZE,
    MAX_RELAY_ADDRESSES,
    Announce,
    MutableGetResponse,
    MutablePutRequest,
    Peer,
    decode_announce,
    decode_lookup_reply,
    decode_mutable_get_request,
    decode_mutable_get_response,
    decode_mutable_put_request,
    decode_peer,
    encode_announce,
    encode_lookup_reply,
    encode_mutable_get_request,
    encode_mutable_get_response,
    encode_mutable_put_request,
    encode_peer,
)

KEY = bytes(range(32))
SIG = bytes(64)

DECODERS: list[Callable[[bytes], Any]] = [
    decode_peer,
    decode_announce,
    decode_lookup_reply,
    decode_mutable_put_request,
    decode_mutable_get_response,
    decode_mutable_get_request,
]

addresses = st.builds(
    IPv4Address,
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    st.integers(0, 65535),
)
peers = st.builds(
    Peer, st.binary(min_size=32, max_size=32), st.lists(addresses, max_size=5).map(tuple)
)
announces = st.builds(
    Announce,
    st.none() | peers,
    st.none() | st.binary(min_size=32, max_size=32),
    st.none() | st.binary(min_size=64, max_size=64),
    st.integers(0, 2**53 - 1),
)


@settings(max_examples=200, deadline=None)
@given(announces)
def test_announce_round_trips(announce: Announce) -> None:
    assert decode_announce(encode_announce(announce)) == announce


@settings(max_examples=100, deadline=None)
@given(st.lists(peers, max_size=20), st.integers(0, 2**53 - 1))
def test_lookup_reply_round_trips(items: list[Peer], bump: int) -> None:
    reply = decode_lookup_reply(encode_lookup_reply([encode_peer(p) for p in items], bump))
    assert reply.peers == tuple(items)
    assert reply.bump == bump


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**53 - 1), st.binary(max_size=300))
def test_mutable_messages_round_trip(seq: int, value: bytes) -> None:
    put = MutablePutRequest(KEY, seq, value, SIG)
    assert decode_mutable_put_request(encode_mutable_put_request(put)) == put
    get = MutableGetResponse(seq, value, SIG)
    assert decode_mutable_get_response(encode_mutable_get_response(get)) == get
    assert decode_mutable_get_request(encode_mutable_get_request(seq)) == seq


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(DECODERS), st.binary(max_size=400))
def test_random_bytes_decode_or_raise_the_typed_error(
    decoder: Callable[[bytes], Any], data: bytes
) -> None:
    with contextlib.suppress(CompactDecodeError):
        decoder(data)


@settings(max_examples=300, deadline=None)
@given(announces, st.data())
def test_every_truncation_of_a_valid_message_is_refused(announce: Announce, data: Any) -> None:
    wire = encode_announce(announce)
    cut = data.draw(st.integers(0, len(wire) - 1))
    with pytest.raises(CompactDecodeError):
        decode_announce(wire[:cut])


def test_lookup_reply_without_bump_reads_as_zero() -> None:
    # JS reads the bump only if bytes remain: older nodes did not send it.
    wire = Writer().uint(1).raw(encode_peer(Peer(KEY))).getvalue()
    assert decode_lookup_reply(wire).bump == 0


@pytest.mark.parametrize(
    ("decoder", "wire"),
    [
        (decode_announce, encode_announce(Announce(Peer(KEY), None, SIG)) + b"\x00"),
        (decode_peer, encode_peer(Peer(KEY)) + b"\x01"),
        (decode_mutable_get_request, b"\x05\x00"),
        # a non-canonical uint seq: 5 in three bytes
        (decode_mutable_get_request, b"\xfd\x05\x00"),
        # a relay count far above what any datagram could hold
        (decode_peer, KEY + Writer().uint(MAX_RELAY_ADDRESSES + 1).getvalue()),
        # a mutable value above the bound
        (
            decode_mutable_get_response,
            Writer().uint(1).uint(MAX_MUTABLE_VALUE_SIZE + 1).getvalue()
            + bytes(MAX_MUTABLE_VALUE_SIZE + 1)
            + SIG,
        ),
        # a lookup reply claiming 10,000 records
        (decode_lookup_reply, Writer().uint(10_000).getvalue()),
    ],
)
def test_strict_decoding_refuses(decoder: Callable[[bytes], Any], wire: bytes) -> None:
    with pytest.raises(CompactDecodeError):
        decoder(wire)


def test_unknown_announce_flags_are_ignored_as_in_js() -> None:
    wire = bytearray(encode_announce(Announce(Peer(KEY), None, SIG)))
    wire[0] |= 0x40
    assert decode_announce(bytes(wire)) == Announce(Peer(KEY), None, SIG)
