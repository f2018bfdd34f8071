"""The dht-rpc codec: round trips, strictness (each malformed shape is a typed error), and
Hypothesis over the decoders."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, strategies as st

from p2pswarm.errors import DHTRPCDecodeError, MessageDecodeError
from p2pswarm.protocol.compact import IPv4Address
from p2pswarm.protocol.dht_rpc import (
    MAX_CLOSER_NODES,
    MAX_DATAGRAM_SIZE,
    Request,
    Response,
    TokenSecrets,
    decode,
    decode_request,
    decode_response,
    node_id,
    peek_tid,
)

PING = bytes.fromhex("03044cb47f00000149c200")  # io.js bytes: PING to 127.0.0.1:49737
PONG = bytes.fromhex("13004cb47f000001c39e")  # "you are 127.0.0.1:40643"

ipv4 = st.builds(
    IPv4Address,
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    st.integers(0, 65535),
)
b32 = st.binary(min_size=32, max_size=32)
requests = st.builds(
    Request,
    tid=st.integers(0, 65535),
    to=ipv4,
    command=st.integers(0, 0xFFFF),
    internal=st.booleans(),
    id=st.none() | b32,
    token=st.none() | b32,
    target=st.none() | b32,
    value=st.none() | st.binary(max_size=600),
)
responses = st.builds(
    Response,
    tid=st.integers(0, 65535),
    to=ipv4,
    id=st.none() | b32,
    token=st.none() | b32,
    closer_nodes=st.lists(ipv4, max_size=20).map(tuple),
    error=st.integers(0, 0xFFFF),
    value=st.none() | st.binary(max_size=600),
)


def test_known_bytes() -> None:
    request = decode_request(PING)
    assert request == Request(0xB44C, IPv4Address("127.0.0.1", 49737), 0, internal=True)
    assert request.encode() == PING
    response = decode_response(PONG)
    assert response.to == ("127.0.0.1", 40643) and response.tid == 0xB44C
    assert response.encode() == PONG
    assert peek_tid(PING) == peek_tid(PONG) == 0xB44C


@given(requests)
def test_request_round_trip(request: Request) -> None:
    assert decode(request.encode()) == request


@given(responses)
def test_response_round_trip(response: Response) -> None:
    assert decode(response.encode()) == response


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("empty", b""),
        ("unknown type", b"\x23" + PING[1:]),
        ("truncated header", PING[:5]),
        ("truncated command", PING[:-1]),
        ("trailing byte", PING + b"\0"),
        ("unknown flag", b"\x03\x24" + PING[2:]),
        ("non-canonical flags varint", b"\x03\xfd\x04\x00" + PING[2:]),
        ("truncated varint", b"\x03\xfd"),
        ("huge command", PING[:-1] + b"\xfe\x00\x00\x01\x00"),
        ("flag without field", b"\x03\x06" + PING[2:]),  # token flag, no token
        ("value longer than datagram", b"\x03\x14" + PING[2:] + b"\xfd\xe8\x03abc"),
        ("oversized", PING[:-1] + b"\x10" + b"\0" * MAX_DATAGRAM_SIZE),
    ],
)
def test_bad_requests_are_typed_errors(name: str, data: bytes) -> None:
    with pytest.raises(DHTRPCDecodeError):
        decode_request(data)


def test_bad_responses_are_typed_errors() -> None:
    too_many = Response(1, IPv4Address("1.1.1.1", 1), closer_nodes=(IPv4Address("1.1.1.1", 1),))
    data = bytearray(too_many.encode())
    data[10] = MAX_CLOSER_NODES + 1  # the closer-node count
    cases = [
        PONG[:-1],
        PONG + b"\0",
        b"\x13\x04" + PONG[2:] + b"\x05",  # five nodes promised, none there
        bytes(data),
        b"\x13\x08" + PONG[2:] + b"\xff" + b"\xff" * 8,  # error beyond 2**53
        b"\x13\x40" + PONG[2:],
        PING,  # a request is not a response
    ]
    for case in cases:
        with pytest.raises(DHTRPCDecodeError):
            decode_response(case)


def test_error_is_in_the_tree() -> None:
    assert issubclass(DHTRPCDecodeError, MessageDecodeError)


@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_typed(data: bytes) -> None:
    for fn in (decode_request, decode_response, decode):
        with contextlib.suppress(DHTRPCDecodeError):
            fn(data)


@given(requests, st.integers(0, 400), st.binary(min_size=1, max_size=4))
def test_mutated_requests_decode_or_raise_typed(request: Request, at: int, junk: bytes) -> None:
    data = bytearray(request.encode())
    at %= len(data)
    data[at : at + len(junk)] = junk
    with contextlib.suppress(DHTRPCDecodeError):
        decode(bytes(data))


def test_field_sizes_are_checked_on_encode() -> None:
    with pytest.raises(ValueError):
        Request(1, IPv4Address("1.1.1.1", 1), 0, id=b"short").encode()
    with pytest.raises(ValueError):
        Response(1, IPv4Address("1.1.1.1", 1), token=b"x" * 31).encode()


def test_node_id_and_tokens() -> None:
    assert node_id("127.0.0.1", 49737) != node_id("127.0.0.1", 49738)
    secrets = TokenSecrets()
    token = secrets.token("10.0.0.1")
    assert secrets.valid("10.0.0.1", token)
    assert not secrets.valid("10.0.0.2", token)
    assert secrets.token("10.0.0.1") == secrets.token("10.0.0.1", 1)
    secrets.rotate()
    assert secrets.valid("10.0.0.1", token)  # now under secret 0
    secrets.rotate()
    assert not secrets.valid("10.0.0.1", token)  # two rotations: expired
