"""The file-transfer codec: round trips under any chunking, and hostile input refused."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings, strategies as st

from p2pswarm.commands.chat import LineSplitter, LineTooLongError, printable
from p2pswarm.commands.transfer_protocol import (
    MAX_CHUNK,
    Accept,
    Data,
    Done,
    DoneStatus,
    FrameDecoder,
    Message,
    Offer,
    ReceiverState,
    Reject,
    check_name,
    encode,
)
from p2pswarm.errors import RemoteProtocolError

DIGEST = bytes(range(32))


def _safe(name: str) -> bool:
    try:
        check_name(name)
    except ValueError:
        return False
    return True


names = st.text(min_size=1, max_size=40).filter(_safe)
reasons = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=50)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(Offer, st.integers(0, 2**63 - 1), st.binary(min_size=32, max_size=32), names),
    st.builds(Accept, st.integers(0, 2**63 - 1)),
    st.builds(Reject, reasons),
    st.builds(Data, st.binary(min_size=1, max_size=2000)),
    st.builds(Done, st.sampled_from(DoneStatus), reasons),
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


@given(st.lists(messages, max_size=8), st.lists(st.integers(0, 10**6), max_size=20))
@settings(max_examples=200)
def test_messages_round_trip_whatever_the_chunking(sent: list[Message], cuts: list[int]) -> None:
    stream = b"".join(encode(m) for m in sent)
    decoder = FrameDecoder()
    received: list[Message] = []
    for piece in _chunks(stream, cuts):
        received.extend(decoder.feed(piece))
    assert decoder.buffered == 0
    assert received == sent


@given(st.binary(max_size=600))
@settings(max_examples=500)
def test_garbage_never_crashes_the_decoder(data: bytes) -> None:
    decoder = FrameDecoder()
    try:
        decoder.feed(data)
    except RemoteProtocolError:
        with pytest.raises(RemoteProtocolError):
            decoder.feed(b"")  # a failed decoder stays failed
    assert decoder.buffered <= 5 + MAX_CHUNK


def _frame(kind: int, body: bytes) -> bytes:
    return struct.pack("!BI", kind, len(body)) + body


@pytest.mark.parametrize(
    "frame",
    [
        _frame(9, b""),  # unknown type
        struct.pack("!BI", 4, MAX_CHUNK + 1),  # DATA longer than allowed, refused unbuffered
        struct.pack("!BI", 1, 10_000),  # OFFER too long
        _frame(4, b""),  # empty DATA
        _frame(2, b"\x00" * 7),  # short ACCEPT
        _frame(2, struct.pack("!Q", 2**63)),  # offset out of range
        _frame(5, b""),  # empty DONE
        _frame(5, b"\x07"),  # unknown DONE status
        _frame(1, b"XXXX" + encode(Offer(1, DIGEST, "a"))[9:]),  # bad magic
    ],
)
def test_hostile_frames_are_refused(frame: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        FrameDecoder().feed(frame)


def _offer_with_name(raw_name: bytes, *, version: int = 1, declared: int | None = None) -> bytes:
    length = len(raw_name) if declared is None else declared
    body = struct.pack("!4sBQ32sB", b"P2PF", version, 10, DIGEST, length) + raw_name
    return _frame(1, body)


@pytest.mark.parametrize(
    "raw_name",
    [b"../etc/passwd", b"a/b", b"a\\b", b"..", b".", b".hidden", b"a\x00b", b"\x1b[2J", b"\xff"],
)
def test_unsafe_names_are_refused(raw_name: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="file name"):
        FrameDecoder().feed(_offer_with_name(raw_name))


def test_offer_framing_errors() -> None:
    with pytest.raises(RemoteProtocolError, match="version"):
        FrameDecoder().feed(_offer_with_name(b"a", version=2))
    with pytest.raises(RemoteProtocolError, match="name length"):
        FrameDecoder().feed(_offer_with_name(b"abc", declared=2))
    with pytest.raises(RemoteProtocolError, match="name"):
        FrameDecoder().feed(_offer_with_name(b""))


def test_encoder_refuses_what_the_protocol_cannot_carry() -> None:
    with pytest.raises(ValueError):
        encode(Offer(1, b"short", "a"))
    with pytest.raises(ValueError):
        encode(Offer(-1, DIGEST, "a"))
    with pytest.raises(ValueError):
        encode(Data(b""))
    with pytest.raises(ValueError):
        encode(Data(b"x" * (MAX_CHUNK + 1)))
    with pytest.raises(ValueError):
        check_name("x" * 256)


def test_receiver_state_enforces_the_sequence() -> None:
    state = ReceiverState()
    with pytest.raises(RemoteProtocolError, match="expected OFFER"):
        state.on_message(Data(b"x"))
    state = ReceiverState()
    state.on_message(Offer(5, DIGEST, "f"))
    with pytest.raises(RemoteProtocolError, match="unexpected Data"):
        state.on_message(Data(b"x"))  # not accepted yet
    assert state.accept(2) == Accept(2)
    state.on_message(Data(b"abc"))
    assert state.complete
    with pytest.raises(RemoteProtocolError, match="unexpected"):
        state.on_message(Offer(5, DIGEST, "f"))
    state = ReceiverState()
    state.on_message(Offer(3, DIGEST, "f"))
    state.accept(0)
    with pytest.raises(RemoteProtocolError, match="past the offered size"):
        state.on_message(Data(b"abcd"))
    with pytest.raises(ValueError):
        ReceiverState().accept(0)


# -- chat lines -----------------------------------------------------------------------------


@given(
    st.lists(st.binary(max_size=30).filter(lambda b: b"\n" not in b), max_size=10),
    st.lists(st.integers(0, 10**4), max_size=10),
)
def test_chat_lines_survive_any_chunking(lines: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    splitter = LineSplitter(max_line=64)
    got: list[bytes] = []
    for piece in _chunks(stream, cuts):
        got.extend(splitter.feed(piece))
    assert got == [line.rstrip(b"\r") for line in lines]


def test_chat_line_bound_and_escaping() -> None:
    with pytest.raises(LineTooLongError):
        LineSplitter(max_line=8).feed(b"123456789")
    assert printable(b"ok\x1b[31m\x07") == "ok\\x1b[31m\\x07"
    assert printable(b"\xff") == "\ufffd"
