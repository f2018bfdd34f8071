"""The UDX stream machine, two of them over a fake link on a fake clock: no sockets."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from p2pswarm.errors import UDXResetError, UDXTimeoutError
from p2pswarm.protocol.udx import UDXStreamMachine, decode_packet
from p2pswarm.protocol.udx.congestion import MIN_RTO
from p2pswarm.protocol.udx.packet import DATA, DESTROY, END, HEARTBEAT, MESSAGE, SACK
from p2pswarm.protocol.udx.stream import HIGH_WATER_MARK, MTU_BASE, MTU_MAX

from .link import Link, Pair, make_pair


def transfer(pair: Pair, a_to_b: bytes, b_to_a: bytes = b"", *, end: bool = True) -> None:
    pair.a.write(a_to_b)
    pair.b.write(b_to_a)
    if end:
        pair.a.end()
        pair.b.end()
    pair.run_until(
        lambda: len(pair.received["b"]) == len(a_to_b) and len(pair.received["a"]) == len(b_to_a)
    )
    assert bytes(pair.received["b"]) == a_to_b
    assert bytes(pair.received["a"]) == b_to_a


def test_one_byte_and_clean_close() -> None:
    pair = make_pair()
    transfer(pair, b"x", b"y")
    pair.run_until(lambda: pair.a.closed and pair.b.closed)
    assert pair.a.error is None and pair.b.error is None
    assert pair.a.eof and pair.b.eof


def test_bulk_both_directions_in_order() -> None:
    data = os.urandom(3 << 20)
    back = os.urandom(1 << 20)
    pair = make_pair()
    transfer(pair, data, back)
    pair.run_until(lambda: pair.a.closed and pair.b.closed)
    assert pair.a.stats.retransmits == 0


def test_packets_count_not_bytes() -> None:
    pair = make_pair()
    pair.a.write(b"a" * 3000)
    datagrams = pair.a.poll_transmit(0.0)
    packets = [decode_packet(d) for d in datagrams]
    assert [p.seq for p in packets] == [0, 1, 2]
    assert [len(p.payload) for p in packets] == [1152, 1152, 696]
    assert all(p.type == DATA and p.stream_id == 2 for p in packets)


def test_end_travels_alone_and_takes_a_seq() -> None:
    a = UDXStreamMachine(1, now=0.0)
    a.connect(9, 0.0)
    a.write(b"abc")
    a.end()
    data, end = [decode_packet(d) for d in a.poll_transmit(0.0)]
    assert (data.type, data.payload, data.seq) == (DATA, b"abc", 0)
    assert (end.type, end.payload, end.seq) == (END, b"", 1)
    b = UDXStreamMachine(1, now=0.0)
    b.connect(9, 0.0)
    b.end()
    (end,) = [decode_packet(d) for d in b.poll_transmit(0.0)]
    assert end.type == END and end.seq == 0 and b.seq == 1


@pytest.mark.parametrize("first", ["a", "b"])
def test_half_close_in_both_orders(first: str) -> None:
    pair = make_pair()
    one, other = (pair.a, pair.b) if first == "a" else (pair.b, pair.a)
    one.write(b"first")
    one.end()
    pair.run_until(lambda: other.eof)
    assert not other.closed and not one.closed
    other.write(b"reply after their end")
    other.end()
    pair.run_until(lambda: pair.a.closed and pair.b.closed)
    name_one = "a" if first == "a" else "b"
    assert bytes(pair.received[name_one]) == b"reply after their end"


def test_destroy_resets_the_other_side() -> None:
    pair = make_pair()
    pair.a.write(b"hello")
    pair.run_until(lambda: pair.received["b"] == b"hello")
    pair.a.destroy()
    out = pair.a.poll_transmit(pair.now)
    assert [decode_packet(d).type for d in out] == [DESTROY]
    assert pair.a.closed and pair.a.error is None
    pair.b.receive_packet(decode_packet(out[0]), pair.now)
    assert pair.b.closed and isinstance(pair.b.error, UDXResetError)


def test_messages_are_unordered_datagrams_without_a_seq() -> None:
    pair = make_pair()
    pair.a.send_message(b"ping")
    pair.a.write(b"data")
    out = [decode_packet(d) for d in pair.a.poll_transmit(0.0)]
    assert out[0].type == MESSAGE and out[0].payload == b"ping" and out[0].seq == 0
    assert out[1].type == DATA and out[1].seq == 0
    for packet in out:
        pair.b.receive_packet(packet, 0.0)
    assert list(pair.b.messages) == [b"ping"]
    assert pair.b.read(100) == b"data"


def test_every_data_batch_is_acked_and_heartbeat_gets_an_ack() -> None:
    pair = make_pair()
    pair.a.write(b"x" * 5000)
    for datagram in pair.a.poll_transmit(0.0):
        pair.b.receive_packet(decode_packet(datagram), 0.001)
    (ack,) = [decode_packet(d) for d in pair.b.poll_transmit(0.001)]
    assert ack.type == 0 and ack.ack == 5 and ack.rwnd == 4 * 1024 * 1024 - 5000
    pair.b.receive_packet(decode_packet(pair.a._header(HEARTBEAT, pair.a.seq)), 0.002)
    (ack,) = [decode_packet(d) for d in pair.b.poll_transmit(0.002)]
    assert ack.type == 0


def test_out_of_order_packets_are_sacked_with_exclusive_ends() -> None:
    pair = make_pair()
    pair.a.write(b"x" * 1152 * 6)
    packets = [decode_packet(d) for d in pair.a.poll_transmit(0.0)]
    for index in (1, 2, 4):
        pair.b.receive_packet(packets[index], 0.0)
    (ack,) = [decode_packet(d) for d in pair.b.poll_transmit(0.0)]
    assert ack.type == SACK and ack.ack == 0
    assert ack.sacks == ((1, 3), (4, 5))
    for index in (0, 3, 5):
        pair.b.receive_packet(packets[index], 0.0)
    assert pair.b.read(1 << 20) == b"x" * 1152 * 6


def test_rtt_estimate_follows_rfc_6298() -> None:
    pair = make_pair(Link(delay=0.050))
    transfer(pair, b"z" * 100_000)
    assert 0.099 <= pair.a.rtt.srtt <= 0.12
    assert pair.a.rtt.rto == 0.2  # the floor
    assert pair.a.mtu > MTU_BASE


def test_mtu_search_climbs_to_1500_with_padded_probes() -> None:
    pair = make_pair()
    seen: list[int] = []

    def watch(to: str, datagram: bytes) -> bool:
        if to == "b":
            packet = decode_packet(datagram)
            if packet.padding:
                seen.append(len(datagram) + 28)
        return True

    pair.link.filter = watch
    sent = 0
    for _ in range(14):  # one probe per round trip: fourteen rounds of a few packets
        pair.a.write(os.urandom(20_000))
        sent += 20_000
        pair.run_until(lambda sent=sent: len(pair.received["b"]) == sent)
    assert pair.a.mtu == MTU_MAX
    assert seen[:3] == [1232, 1264, 1296]


def test_mtu_probes_that_never_arrive_stop_after_three() -> None:
    pair = make_pair()
    pair.link.filter = lambda to, d: not (to == "b" and decode_packet(d).padding)
    transfer(pair, os.urandom(1 << 20))
    assert pair.a.mtu == MTU_BASE


@pytest.mark.parametrize("seed", range(6))
def test_loss_reorder_and_duplicates_deliver_every_byte(seed: int) -> None:
    link = Link(seed=seed, loss=0.05, delay=0.01, jitter=0.01, duplicate=0.02)
    pair = make_pair(link)
    data = os.urandom(400_000)
    back = os.urandom(150_000)
    transfer(pair, data, back)
    pair.run_until(lambda: pair.a.closed or pair.b.closed)
    assert pair.a.stats.retransmits > 0


def test_heavy_loss_still_delivers() -> None:
    pair = make_pair(Link(seed=3, loss=0.15, delay=0.002, jitter=0.004))
    transfer(pair, os.urandom(100_000), os.urandom(50_000))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.floats(0.0, 0.25),
    jitter=st.floats(0.0, 0.02),
    size=st.integers(1, 120_000),
    back=st.integers(0, 40_000),
    read_size=st.integers(100, 70_000),
)
def test_any_loss_and_reorder_schedule_delivers_in_order(
    seed: int, loss: float, jitter: float, size: int, back: int, read_size: int
) -> None:
    # Patience without bound: the six-timeouts rule has its own test, this one is about order.
    link = Link(seed=seed, loss=loss, delay=0.003, jitter=jitter, duplicate=0.01)
    pair = make_pair(link, max_timeouts=1000)
    pair.read_size = read_size
    data = os.urandom(size)
    reply = os.urandom(back)
    transfer(pair, data, reply)


def test_a_peer_that_never_acks_times_out_after_six_rtos() -> None:
    pair = make_pair()
    pair.link.filter = lambda to, d: to == "b" and False
    pair.a.write(b"into the void")
    pair.run_until(lambda: pair.a.closed)
    assert isinstance(pair.a.error, UDXTimeoutError)
    assert pair.a.stats.rto_count == 7
    assert 5 < pair.now < 15  # 1 s first, then doubling up to 2 s: about libudx's 13 s


def test_zero_window_forever_probes_without_spinning() -> None:
    pair = make_pair(rwnd_max=10_000)
    pair.read_size = None  # b never reads
    pair.a.write(os.urandom(200_000))
    steps = 0
    while pair.now < 600 and steps < 100_000:
        pair.step()
        steps += 1
    probes = pair.a.stats.zero_window_probes
    assert 50 < probes <= 600 / (2 * MIN_RTO) + 2  # one every two RTOs, not a spin
    assert pair.now >= 600 and steps < 4 * probes
    assert not pair.a.closed and pair.b.readable <= 2 * 10_000
    # the reader comes back: everything arrives
    pair.read_size = 1 << 20
    pair.run_until(lambda: len(pair.received["b"]) == 200_000)


def test_write_blocks_above_the_high_water_mark() -> None:
    a = UDXStreamMachine(1, now=0.0)
    a.connect(2, 0.0)
    a.write(b"x" * (HIGH_WATER_MARK // 2))
    assert not a.write_blocked
    a.write(b"x" * HIGH_WATER_MARK)
    assert a.write_blocked


def test_keepalive_sends_heartbeats_when_idle() -> None:
    pair = make_pair(keepalive=5.0)
    types: list[int] = []
    pair.link.filter = lambda to, d: types.append(decode_packet(d).type) or True
    while pair.now < 21:
        pair.step()
    assert types.count(HEARTBEAT) == 8  # 4 each way in 21 s
    assert not pair.a.closed


def test_change_remote_waits_for_in_flight_packets() -> None:
    pair = make_pair()
    pair.a.write(b"x" * 5000)
    pair.flush()
    assert pair.a.change_remote(7) is False and pair.a.remote_changing
    pair.check_ids = False  # the "new remote" 7 is the same machine
    pair.run_until(lambda: not pair.a.remote_changing)
    assert pair.a.remote_changes == 1
    assert pair.a.change_remote(7) is True


def test_an_unanswered_end_after_the_remote_ended_is_a_clean_close() -> None:
    pair = make_pair()
    pair.b.end()
    pair.a.write(b"data")
    pair.run_until(lambda: pair.a.eof and len(pair.received["b"]) == 4)
    pair.a.end()
    pair.link.filter = lambda to, d: to == "b" and False  # b is gone
    pair.run_until(lambda: pair.a.closed)
    assert pair.a.error is None


def test_data_with_a_data_packet_unanswered_is_still_a_timeout() -> None:
    pair = make_pair()
    pair.b.end()
    pair.run_until(lambda: pair.a.eof)
    pair.link.filter = lambda to, d: to == "b" and False
    pair.a.write(b"lost")
    pair.a.end()
    pair.run_until(lambda: pair.a.closed)
    assert isinstance(pair.a.error, UDXTimeoutError)


def test_a_timeout_does_not_count_against_a_packet_still_waiting_to_be_resent() -> None:
    # libudx udx_rto_timeout: a packet already marked lost is queued for retransmission and
    # skipped; only one that went out again and was not answered counts a timeout.
    a = UDXStreamMachine(1, now=0.0)
    a.connect(2, 0.0)
    a.write(b"x" * 5000)
    assert len(a.poll_transmit(0.0)) == 5
    head = a._out[0]
    now = 0.0
    for _ in range(3 * a.max_timeouts):  # timeouts with no chance to retransmit
        deadline = a.next_timeout()
        assert deadline is not None
        now = max(now, deadline)
        a.handle_timeout(now)
    assert not a.closed
    assert head.lost and head.rto_timeouts == 1 and head.transmits == 1
    for _ in range(100):  # now each timeout is followed by the retransmission
        a.poll_transmit(now)
        if a.closed:
            break
        deadline = a.next_timeout()
        assert deadline is not None
        now = max(now, deadline)
        a.handle_timeout(now)
    assert isinstance(a.error, UDXTimeoutError)
    assert head.transmits == a.max_timeouts + 1
