"""The protomux state machine alone: two instances wired back to back, and hostile input.

Byte-level agreement with JS is in tests/interop/test_protomux_vectors_js.py; here the
state machine's own rules: pairing in either order, rejects, closes and id reuse, batches,
buffering for unpaired channels (pause and hard bound), and every refusal typed.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from p2pswarm.errors import (
    ChannelClosedError,
    ChannelOverflowError,
    ChannelProtocolError,
    CompactDecodeError,
    RemoteProtocolError,
)
from p2pswarm.protocol.compact import Writer
from p2pswarm.protocol.protomux import (
    MAX_BUFFERED,
    BatchEnd,
    Channel,
    ChannelClosed,
    ChannelMessage,
    ChannelOpened,
    PairRequest,
    Protomux,
)


def pump(a: Protomux, b: Protomux) -> tuple[list[Any], list[Any]]:
    """Deliver everything queued both ways until quiet; returns (a's events, b's events)."""
    ea: list[Any] = [*a.events()]
    eb: list[Any] = [*b.events()]
    for _ in range(100):
        out_a, out_b = a.messages_to_send(), b.messages_to_send()
        if not out_a and not out_b:
            return ea, eb
        for m in out_a:
            eb += b.receive(m)
        for m in out_b:
            ea += a.receive(m)
    raise AssertionError("no quiescence")


def opened_pair(
    protocol: str = "p", id: bytes | None = None
) -> tuple[Protomux, Protomux, Channel, Channel]:
    a, b = Protomux(), Protomux()
    ca, cb = a.create_channel(protocol, id), b.create_channel(protocol, id)
    assert ca and cb
    a.open(ca)
    b.open(cb)
    pump(a, b)
    assert ca.opened and cb.opened
    return a, b, ca, cb


def test_simultaneous_open_pairs_and_handshakes_cross() -> None:
    a, b = Protomux(), Protomux()
    ca, cb = a.create_channel("p", b"x"), b.create_channel("p", b"x")
    assert ca and cb
    a.open(ca, b"from-a")
    b.open(cb, b"from-b")
    ea, eb = pump(a, b)
    assert ea == [ChannelOpened(ca, b"from-b")] and eb == [ChannelOpened(cb, b"from-a")]
    # Distinct ids do not pair.
    c2 = a.create_channel("p", b"y")
    assert c2
    a.open(c2)
    ea, eb = pump(a, b)
    assert ea == [ChannelClosed(c2, True)]  # b rejected it


def test_unique_channels_and_messages_both_ways() -> None:
    a, b, ca, cb = opened_pair()
    assert a.create_channel("p") is None
    assert a.create_channel("p", unique=False) is not None
    a.send(ca, 3, b"hello")
    b.send(cb, 0, b"")
    ea, eb = pump(a, b)
    assert eb == [ChannelMessage(cb, 3, b"hello")] and ea == [ChannelMessage(ca, 0, b"")]


def test_backlog_pairing_buffers_then_delivers_in_order() -> None:
    a, b = Protomux(), Protomux()
    b.pair("late")
    ca = a.create_channel("late")
    assert ca
    a.open(ca)
    for i in range(3):
        a.send(ca, 0, bytes([i]))
    _, eb = pump(a, b)
    assert eb == [PairRequest("late", None)]
    assert b.buffered == 3 * (512 + 1) and not b.paused
    cb = b.create_channel("late")
    assert cb and cb.opened
    assert b.events() == [ChannelOpened(cb, b"")] + [
        ChannelMessage(cb, 0, bytes([i])) for i in range(3)
    ]
    assert b.buffered == 0
    b.open(cb)
    b.pair_done("late")
    ea, _ = pump(a, b)
    assert ea == [ChannelOpened(ca, b"")]


def test_pair_done_without_a_channel_rejects_and_frees_the_buffer() -> None:
    a, b = Protomux(), Protomux()
    b.pair("maybe")
    ca = a.create_channel("maybe")
    assert ca
    a.open(ca)
    a.send(ca, 0, b"x" * 100)
    pump(a, b)
    assert b.buffered > 0
    b.pair_done("maybe")
    ea, _ = pump(a, b)
    assert ea == [ChannelClosed(ca, True)] and b.buffered == 0


def test_buffering_pauses_like_js_then_overflows_with_a_typed_error() -> None:
    a = Protomux()
    b = Protomux(max_buffered_hard=MAX_BUFFERED * 2)
    b.pair("slow")
    ca = a.create_channel("slow")
    assert ca
    a.open(ca)
    for m in a.messages_to_send():
        b.receive(m)
    with pytest.raises(ChannelOverflowError):
        for _ in range(1000):
            a.send(ca, 0, b"y" * 1000)
            for m in a.messages_to_send():
                b.receive(m)
                if b.buffered > MAX_BUFFERED:
                    assert b.paused


def test_close_either_side_and_ids_are_reused() -> None:
    a, b, ca, cb = opened_pair()
    a.close(ca)
    ea, eb = pump(a, b)
    assert ea == [ChannelClosed(ca, False)] and eb == [ChannelClosed(cb, True)]
    with pytest.raises(ChannelClosedError):
        a.send(ca, 0, b"")
    a.close(ca)  # idempotent
    n = a.create_channel("again")
    m = b.create_channel("again")
    assert n and m
    a.open(n)
    b.open(m)
    pump(a, b)
    assert n.local_id == 1 and m.local_id == 1 and n.opened


def test_messages_to_closed_or_unknown_channels_and_unknown_types_are_ignored() -> None:
    _a, b, _ca, _cb = opened_pair()
    assert b.receive(bytes(Writer().uint(99).uint(0).raw(b"x"))) == []
    assert b.receive(bytes(Writer().uint(0).uint(77).raw(b"x"))) == []  # unknown control
    assert b.receive(b"") == []  # empty frames are ignored
    assert b.receive(bytes(Writer().uint(0).uint(3).uint(42))) == []  # close of unknown


def test_cork_batches_and_a_received_batch_corks_replies() -> None:
    a, b, ca, cb = opened_pair()
    a.cork()
    a.cork()
    a.send(ca, 0, b"1")
    a.uncork()
    assert a.messages_to_send() == []
    a.send(ca, 1, b"2")
    a.uncork()
    (batch,) = a.messages_to_send()
    assert batch[:2] == b"\x00\x00"
    events = b.receive(batch)
    assert events == [ChannelMessage(cb, 0, b"1"), ChannelMessage(cb, 1, b"2"), BatchEnd()]
    assert b.corked == 1
    b.send(cb, 0, b"r1")
    b.send(cb, 0, b"r2")
    assert b.messages_to_send() == []
    b.uncork()
    (reply,) = b.messages_to_send()
    assert a.receive(reply) == [
        ChannelMessage(ca, 0, b"r1"),
        ChannelMessage(ca, 0, b"r2"),
        BatchEnd(),
    ]
    a.uncork()
    assert a.messages_to_send() == []  # an empty batch is not sent
    with pytest.raises(ValueError):
        b.uncork()


def test_destroy_closes_everything_as_remote() -> None:
    a, _b, ca, _cb = opened_pair()
    assert a.destroy() == [ChannelClosed(ca, True)]
    assert a.create_channel("z") is None
    assert a.receive(b"\x01\x00") == []


def _open(remote_id: int, protocol: str = "p", id: bytes | None = None) -> bytes:
    w = Writer().uint(0).uint(1).uint(remote_id).string(protocol)
    return bytes(w.buffer(id))


@pytest.mark.parametrize(
    "messages",
    [
        [_open(0)],  # the control channel
        [_open(2)],  # skips an id
        [_open(1, "q"), _open(1, "q")],  # an id already in use
        [bytes(Writer().uint(0).uint(2).uint(5))],  # reject of a channel never opened
        [bytes(Writer().uint(0).uint(3).uint(1).raw(b"!"))],  # trailing bytes after close
        [bytes(Writer().uint(0).uint(0).uint(1).uint(5).raw(b"ab"))],  # entry past the end
        [bytes(Writer().uint(0).uint(0).uint(0).buffer(b"\x00\x00\x00"))],  # nested batch
        [b"\x00\x01\xfd\x01\x00"],  # a non-canonical uint
        [bytes(Writer().uint(0).uint(1).uint(1).buffer(b"\xff\xfe"))],  # protocol not UTF-8
        [bytes(Writer().uint(0).uint(1).uint(1).uint(2000))],  # protocol longer than allowed
        [b"\x00"],  # truncated
    ],
)
def test_hostile_messages_raise_typed_errors(messages: list[bytes]) -> None:
    mux = Protomux()
    mux.pair("q")  # an open of "q" waits in the backlog, holding its id
    with pytest.raises(RemoteProtocolError) as info:
        for m in messages:
            mux.receive(m)
    assert isinstance(info.value, ChannelProtocolError | CompactDecodeError)


def test_limits_on_backlog_channels_and_message_size() -> None:
    mux = Protomux(max_backlog=2)
    mux.pair("p")
    mux.receive(_open(1))
    mux.receive(_open(2))
    with pytest.raises(ChannelProtocolError, match="unpaired"):
        mux.receive(_open(3))
    mux = Protomux(max_channels=2)
    mux.receive(_open(1))  # rejected at once: the slot stays free for reuse
    mux.receive(_open(1))
    mux.receive(_open(2))
    with pytest.raises(ChannelProtocolError, match="remote channels"):
        mux.receive(_open(3))
    with pytest.raises(ChannelProtocolError, match="above the maximum"):
        Protomux(max_message_size=10).receive(bytes(11))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8), st.booleans())
def test_random_messages_only_raise_protocol_errors(messages: list[bytes], paired: bool) -> None:
    mux = Protomux()
    if paired:
        mux.pair("p")
        channel = mux.create_channel("p")
        assert channel
        mux.open(channel)
    for m in messages:
        try:
            mux.receive(m)
        except RemoteProtocolError:
            return
    assert mux.buffered >= 0


control = st.one_of(
    st.builds(_open, st.integers(0, 4), st.sampled_from(["p", "q"]), st.none() | st.just(b"i")),
    st.builds(
        lambda t, n: bytes(Writer().uint(0).uint(t).uint(n)), st.integers(2, 3), st.integers(0, 4)
    ),
    st.builds(
        lambda c, t, p: bytes(Writer().uint(c).uint(t).raw(p)),
        st.integers(1, 4),
        st.integers(0, 3),
        st.binary(max_size=8),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(control, max_size=12))
def test_structured_sequences_keep_the_accounting_consistent(messages: list[bytes]) -> None:
    mux = Protomux()
    mux.pair("p")
    for m in messages:
        try:
            for event in mux.receive(m):
                if isinstance(event, PairRequest) and event.protocol == "p":
                    channel = mux.create_channel("p", event.id)
                    if channel is not None:
                        mux.open(channel)
                    mux.pair_done("p", event.id)
        except RemoteProtocolError:
            return
        assert mux.buffered >= 0
        assert all(c.local_id > 0 for c in mux.channels())
