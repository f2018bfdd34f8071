"""The datagram codec: round trips, and strict rejection of everything malformed."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings, strategies as st

from p2pswarm.dht import messages
from p2pswarm.dht.messages import (
    MAX_DATAGRAM_SIZE,
    Command,
    NodeContact,
    Request,
    Response,
    Status,
    decode,
)
from p2pswarm.errors import MessageDecodeError

node_ids = st.binary(min_size=20, max_size=20)
rids = st.integers(0, 2**32 - 1)
hosts = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
ports = st.integers(1, 65535)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    command = draw(st.sampled_from(Command))
    node_id = draw(st.none() | node_ids)
    rid = draw(rids)
    padding = draw(st.sampled_from([0, 1, 17, 1232, messages.MAX_PADDING]))
    if command in (Command.ANNOUNCE, Command.UNANNOUNCE):
        return Request(
            command,
            rid,
            node_id,
            token=draw(st.binary(min_size=32, max_size=32)),
            payload=draw(st.binary(max_size=512)),
            padding=padding,
        )
    size = {Command.PING: 0, Command.FIND_NODE: 20}.get(command, 32)
    return Request(
        command,
        rid,
        node_id,
        key=draw(st.binary(min_size=size, max_size=size)),
        token=draw(st.just(b"") | st.binary(min_size=32, max_size=32)),
        padding=padding,
    )


@st.composite
def responses(draw: st.DrawFn) -> Response:
    contacts = st.builds(NodeContact, node_ids, hosts, ports)
    return Response(
        command=draw(st.sampled_from(Command)),
        rid=draw(rids),
        to=(draw(hosts), draw(st.integers(0, 65535))),
        node_id=draw(st.none() | node_ids),
        status=draw(st.sampled_from(Status)),
        token=draw(st.none() | st.binary(min_size=32, max_size=32)),
        nodes=tuple(draw(st.lists(contacts, max_size=20))),
        records=tuple(draw(st.lists(st.tuples(hosts, st.binary(max_size=200)), max_size=20))),
        truncated=draw(st.booleans()),
    )


@given(requests())
@settings(deadline=None)
def test_requests_round_trip(request: Request) -> None:
    assert decode(request.encode()) == request


@given(responses())
@settings(max_examples=200, deadline=None)
def test_responses_round_trip(response: Response) -> None:
    decoded = decode(response.encode())
    assert isinstance(decoded, Response)
    # IPv6 text forms are normalised by the codec; compare through a second round trip.
    assert decoded.encode() == response.encode()
    assert decoded.rid == response.rid and decoded.nodes == tuple(
        NodeContact(n.node_id, messages.decode_host(messages.encode_host(n.host)), n.port)
        for n in response.nodes
    )


@given(st.binary(max_size=2048))
@settings(max_examples=1000, deadline=None)
def test_random_bytes_decode_or_raise_the_typed_error(data: bytes) -> None:
    with contextlib.suppress(MessageDecodeError):
        decode(data)


@given(st.one_of(requests(), responses()), st.data())
@settings(max_examples=300, deadline=None)
def test_every_truncation_is_rejected(message: Request | Response, data: st.DataObject) -> None:
    encoded = message.encode()
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(MessageDecodeError):
        decode(encoded[:cut])


@given(st.one_of(requests(), responses()), st.binary(min_size=1, max_size=64))
@settings(deadline=None)
def test_trailing_bytes_are_rejected(message: Request | Response, tail: bytes) -> None:
    with pytest.raises(MessageDecodeError, match="trailing"):
        decode(message.encode() + tail)


@given(st.one_of(requests(), responses()), st.data())
@settings(max_examples=300, deadline=None)
def test_flipped_bytes_never_escape_as_other_errors(
    message: Request | Response, data: st.DataObject
) -> None:
    encoded = bytearray(message.encode())
    index = data.draw(st.integers(0, len(encoded) - 1))
    encoded[index] ^= data.draw(st.integers(1, 255))
    with contextlib.suppress(MessageDecodeError):
        decode(bytes(encoded))


def test_oversized_datagram_is_rejected_before_parsing() -> None:
    with pytest.raises(MessageDecodeError, match="exceeds"):
        decode(b"\x01" * (MAX_DATAGRAM_SIZE + 1))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\x01\x00\x00", "truncated"),
        (b"\x01\x00\x00\x00\x00\x00\x01", "version"),
        (b"\x02\x3f\x00\x00\x00\x00\x01", "unknown command"),
        (b"\x02\x00\x80\x00\x00\x00\x01", "flags"),
        (b"\x02\x00\x08\x00\x00\x00\x01", "flags"),
        (b"\x02\x80\x08\x04\x7f\x00\x00\x01\x00\x01\x00\x00\x00", "flags"),
        (b"\x02\x80\x00\x00\x00\x00\x01\x05" + bytes(6), "family"),
        (b"\x02\x80\x00\x00\x00\x00\x01\x04\x7f\x00\x00\x01\x00\x01\x09\x00\x00", "status"),
        (b"\x02\x80\x00\x00\x00\x00\x01\x04\x7f\x00\x00\x01\x00\x01\x00\x15", "nodes"),
        (b"\x02\x80\x00\x00\x00\x00\x01\x04\x7f\x00\x00\x01\x00\x01\x00\x00\x15", "records"),
    ],
)
def test_malformed_headers(data: bytes, reason: str) -> None:
    with pytest.raises(MessageDecodeError, match=reason):
        decode(data)


def test_record_blob_length_is_bounded() -> None:
    request = Request(Command.ANNOUNCE, 1, token=bytes(32), payload=b"x")
    encoded = bytearray(request.encode())
    encoded[-3:-1] = (600).to_bytes(2, "big")  # the u16 length of the blob
    with pytest.raises(MessageDecodeError, match="exceeds"):
        decode(bytes(encoded))


def test_contacts_with_port_zero_are_rejected() -> None:
    good = Response(
        Command.FIND_NODE, 1, ("127.0.0.1", 1), nodes=(NodeContact(bytes(20), "127.0.0.1", 9),)
    )
    encoded = bytearray(good.encode())
    encoded[-3:-1] = b"\x00\x00"  # the contact's port (before the record count)
    with pytest.raises(MessageDecodeError, match="port 0"):
        decode(bytes(encoded))


def test_encoder_refuses_out_of_bound_values() -> None:
    with pytest.raises(ValueError):
        Request(Command.FIND_NODE, 1, key=b"short").encode()
    with pytest.raises(ValueError):
        Request(Command.ANNOUNCE, 1, token=bytes(32), payload=bytes(600)).encode()
    with pytest.raises(ValueError):
        Response(Command.LOOKUP, 1, ("127.0.0.1", 1), records=(("127.0.0.1", b""),) * 21).encode()


def test_padding_must_be_zero_bytes_of_the_stated_length() -> None:
    padded = Request(Command.LOOKUP, 1, key=bytes(32), padding=100).encode()
    assert len(padded) == len(Request(Command.LOOKUP, 1, key=bytes(32)).encode()) + 102
    assert decode(padded) == Request(Command.LOOKUP, 1, key=bytes(32), padding=100)
    with pytest.raises(MessageDecodeError, match="zero"):
        decode(padded[:-1] + b"\x01")
    zero_length = padded[:-102] + b"\x00\x00"
    with pytest.raises(MessageDecodeError, match="padding"):
        decode(zero_length)
    too_long = padded[:-102] + (messages.MAX_PADDING + 1).to_bytes(2, "big")
    with pytest.raises(MessageDecodeError, match="padding"):
        decode(too_long + bytes(messages.MAX_PADDING + 1))
    with pytest.raises(ValueError):
        Request(Command.PING, 1, padding=messages.MAX_PADDING + 1).encode()


def test_an_announce_never_carries_a_second_token() -> None:
    announce = bytearray(Request(Command.ANNOUNCE, 1, token=bytes(32), payload=b"x").encode())
    announce[2] |= 0x02
    with pytest.raises(MessageDecodeError, match="token"):
        decode(bytes(announce))


def test_a_query_token_round_trips() -> None:
    request = Request(Command.FIND_NODE, 7, key=bytes(20), token=b"t" * 32)
    assert decode(request.encode()) == request
    with pytest.raises(ValueError):
        Request(Command.LOOKUP, 7, key=bytes(32), token=b"short").encode()


@given(st.binary(max_size=40))
@settings(deadline=None)
def test_host_decoder_fuzz(data: bytes) -> None:
    try:
        host = messages.decode_host(data)
    except MessageDecodeError:
        return
    assert messages.encode_host(host) == data


@pytest.mark.parametrize("pad_to", [0, 10, 41, 42, 100, 1232])
def test_encode_pads_up_to_a_size(pad_to: int) -> None:
    request = Request(Command.LOOKUP, 3, key=bytes(32))  # 39 bytes unpadded
    data = request.encode(pad_to)
    assert len(data) == (pad_to if pad_to >= 42 else 39)
    assert decode(data) == Request(Command.LOOKUP, 3, key=bytes(32), padding=max(0, len(data) - 41))
    padded = Request(Command.LOOKUP, 3, key=bytes(32), padding=50)
    expected = 50 if pad_to == 0 else max(0, len(data) - 41)  # pad_to overrides padding
    assert decode(padded.encode(pad_to)).padding == expected
