"""Hypothesis over the RPC wire and the JSON codec: round trips, and random bytes raise only
the library's typed errors."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings, strategies as st

from p2pswarm.errors import CodecError, CompactDecodeError
from p2pswarm.mux import JSON
from p2pswarm.rpc.wire import REQUEST, RESPONSE, Request, Response

names = st.text(max_size=40).filter(lambda s: len(s.encode()) <= 256)


@given(st.integers(0, 2**32), names, st.binary(max_size=200))
def test_request_round_trip(id: int, method: str, body: bytes) -> None:
    request = Request(id, method, body)
    assert REQUEST.decode(REQUEST.encode(request)) == request


@given(st.integers(0, 2**32), st.binary(max_size=100) | st.none(), names, names)
def test_response_round_trip(id: int, body: bytes | None, code: str, message: str) -> None:
    response = Response(id, body) if body is not None else Response(id, b"", code, message)
    assert RESPONSE.decode(RESPONSE.encode(response)) == response


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_random_bytes_decode_or_raise_typed(data: bytes) -> None:
    for codec in (REQUEST, RESPONSE):
        with contextlib.suppress(CompactDecodeError):
            codec.decode(data)
    with contextlib.suppress(CodecError):
        JSON.decode(data)
