"""A UDX stream machine fed lies: acks for data never sent, SACK ranges that lie, sequence
numbers far ahead, a flood of garbage. Each is ignored or bounded; the stream carries on."""

from __future__ import annotations

import os

from hypothesis import given, settings, strategies as st

from p2pswarm.protocol.udx import Packet, UDXStreamMachine
from p2pswarm.protocol.udx.packet import DATA, DESTROY, END, HEARTBEAT, KNOWN_TYPES, MESSAGE
from p2pswarm.protocol.udx.receiver import MAX_AHEAD

from .link import make_pair


def connected(rwnd_max: int = 4 * 1024 * 1024) -> UDXStreamMachine:
    machine = UDXStreamMachine(1, now=0.0, rwnd_max=rwnd_max)
    machine.connect(2, 0.0)
    return machine


def test_an_ack_for_data_never_sent_is_ignored() -> None:
    m = connected()
    m.write(b"x" * 3000)
    m.poll_transmit(0.0)
    m.receive_packet(Packet(0, 1, 1000, 0, 500), 0.01)
    assert m.remote_acked == 0 and m.send_buffered == 3000
    assert m.stats.ignored_acks == 1


def test_lying_sack_ranges_are_dropped() -> None:
    m = connected()
    m.write(b"x" * 1152 * 4)
    m.poll_transmit(0.0)  # seq 0..3 in flight
    lies = ((2, 9), (4, 5), (3, 2))  # past our seq; not sent; backwards (decoder-proof)
    m.receive_packet(Packet(0, 1, 1 << 20, 0, 0, sacks=lies), 0.01)
    assert m.stats.dropped_sacks == 3 and m.in_flight == 4
    m.receive_packet(Packet(0, 1, 1 << 20, 0, 0, sacks=((1, 3),)), 0.01)
    assert m.in_flight == 2  # an honest one still works


def test_sequence_numbers_far_ahead_are_not_buffered() -> None:
    m = connected()
    for seq in (MAX_AHEAD, 2**31 - 1, 2**31 + 5, 2**32 - 1):
        m.receive_packet(Packet(DATA, 1, 0, seq, 0, b"far"), 0.0)
    assert m.recv.buffered_out_of_order == 0
    m.receive_packet(Packet(DATA, 1, 0, 0, 0, b"near"), 0.0)
    assert m.read(10) == b"near"


def test_the_out_of_order_buffer_is_bounded_in_bytes() -> None:
    m = connected(rwnd_max=64 * 1024)
    payload = os.urandom(1400)
    for seq in range(1, MAX_AHEAD):
        m.receive_packet(Packet(DATA, 1, 0, seq, 0, payload), 0.0)
    assert m.recv.buffered_out_of_order * 1400 <= 2 * 64 * 1024
    assert m.recv.dropped > 0


def test_data_past_the_remote_end_is_dropped() -> None:
    m = connected()
    m.receive_packet(Packet(END, 1, 0, 3, 0), 0.0)
    m.receive_packet(Packet(DATA, 1, 0, 5, 0, b"after the end"), 0.0)
    assert m.recv.buffered_out_of_order == 1


def test_a_stale_destroy_is_ignored() -> None:
    pair = make_pair()
    pair.a.write(b"x" * 5000)
    pair.run_until(lambda: len(pair.received["b"]) == 5000)
    pair.b.receive_packet(Packet(DESTROY, 2, 0, 1, 0), pair.now)  # seq < ack: old
    assert not pair.b.closed


actions = st.lists(
    st.builds(
        Packet,
        type=st.integers(0, KNOWN_TYPES),
        stream_id=st.just(1),
        rwnd=st.integers(0, 2**32 - 1),
        seq=st.one_of(st.integers(0, 64), st.integers(0, 2**32 - 1)),
        ack=st.one_of(st.integers(0, 64), st.integers(0, 2**32 - 1)),
        payload=st.binary(max_size=64),
        sacks=st.lists(
            st.tuples(st.integers(0, 64), st.integers(0, 64)).filter(lambda t: t[0] < t[1]),
            max_size=4,
        ).map(tuple),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(actions, st.integers(0, 50_000))
def test_any_packet_sequence_leaves_a_sane_machine(packets: list[Packet], written: int) -> None:
    m = connected(rwnd_max=32 * 1024)
    m.write(b"w" * written)
    now = 0.0
    for packet in packets:
        m.poll_transmit(now)
        m.receive_packet(packet, now)
        now += 0.01
        timeout = m.next_timeout()
        if timeout is not None and timeout <= now:
            m.handle_timeout(now)
        m.read(1000)
    assert m.recv.buffered_out_of_order <= MAX_AHEAD
    assert 0 <= m.send_buffered <= written
    assert m.in_flight <= m.seq - m.remote_acked or m.closed


def test_types_without_a_seq_do_not_move_ack() -> None:
    m = connected()
    for type_ in (MESSAGE, HEARTBEAT, 0):
        m.receive_packet(Packet(type_, 1, 0, 0, 0, b"m"), 0.0)
    assert m.recv.ack == 0 and list(m.messages) == [b"m"]
