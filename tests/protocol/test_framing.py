from __future__ import annotations

import itertools

import pytest
from hypothesis import given, strategies as st

from p2pswarm.errors import RemoteProtocolError
from p2pswarm.protocol import MAX_FRAME_SIZE, FrameDecoder, encode_frame_header


def collect(decoder: FrameDecoder, data: bytes) -> list[bytes]:
    return [bytes(body) for body in decoder.frames(data)]


def test_header_is_uint24_little_endian() -> None:
    assert encode_frame_header(0) == b"\x00\x00\x00"
    assert encode_frame_header(0x123456) == b"\x56\x34\x12"
    assert encode_frame_header(MAX_FRAME_SIZE) == b"\xff\xff\xff"
    with pytest.raises(ValueError):
        encode_frame_header(MAX_FRAME_SIZE + 1)
    with pytest.raises(ValueError):
        encode_frame_header(-1)


def test_decodes_several_frames_in_one_chunk_including_empty_ones() -> None:
    decoder = FrameDecoder()
    wire = b"".join(encode_frame_header(len(b)) + b for b in (b"abc", b"", b"xy"))
    assert collect(decoder, wire) == [b"abc", b"", b"xy"]
    assert decoder.buffered == 0


def test_partial_frame_waits_for_the_rest() -> None:
    decoder = FrameDecoder()
    wire = encode_frame_header(5) + b"hello"
    assert collect(decoder, wire[:2]) == []
    assert collect(decoder, wire[2:6]) == []
    assert decoder.buffered == 6
    assert collect(decoder, wire[6:] + wire[:1]) == [b"hello"]
    assert decoder.buffered == 1


def test_oversized_length_is_rejected_as_soon_as_the_prefix_arrives() -> None:
    decoder = FrameDecoder(max_frame_size=10)
    good = encode_frame_header(3) + b"abc"
    seen: list[bytes] = []
    with pytest.raises(RemoteProtocolError, match="exceeds the maximum"):
        seen.extend(bytes(body) for body in decoder.frames(good + encode_frame_header(11)))
    assert seen == [b"abc"]


def test_rejects_a_bad_maximum() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(max_frame_size=MAX_FRAME_SIZE + 1)


def test_stopping_early_keeps_the_rest_buffered() -> None:
    decoder = FrameDecoder()
    wire = b"".join(encode_frame_header(len(b)) + b for b in (b"one", b"two", b"three"))
    frames = decoder.frames(wire)
    assert bytes(next(frames)) == b"one"
    frames.close()
    assert collect(decoder, b"") == [b"two", b"three"]


@given(
    bodies=st.lists(st.binary(max_size=300), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=20),
)
def test_any_chunking_gives_the_same_frames(bodies: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(encode_frame_header(len(b)) + b for b in bodies)
    points = sorted({c for c in cuts if c < len(wire)} | {0, len(wire)})
    decoder = FrameDecoder()
    out: list[bytes] = []
    for start, end in itertools.pairwise(points):
        out += collect(decoder, wire[start:end])
    assert out == bodies
    assert decoder.buffered == 0
