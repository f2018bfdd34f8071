"""Loss recovery when the acks are lost too: every second packet acked, the first lost
packet resent at once, probes that repeat before the timeout. These are the cases that
stalled a stream for a whole RTO at a few percent of loss on a short path."""

from __future__ import annotations

import itertools

from p2pswarm.protocol.udx import UDXStreamMachine, decode_packet
from p2pswarm.protocol.udx.congestion import INITIAL_CWND
from p2pswarm.protocol.udx.stream import _MAX_PROBES, ACK_EVERY, ACK_EVERY_CLEAN


def _pair() -> tuple[UDXStreamMachine, UDXStreamMachine]:
    a = UDXStreamMachine(1, now=0.0)
    b = UDXStreamMachine(2, now=0.0)
    a.connect(2, 0.0)
    b.connect(1, 0.0)
    return a, b


def _batch(count: int, *, drop_first: bool) -> list[int]:
    """B reads ``count`` of A's data packets in one batch; the acks it sends meanwhile."""
    a, b = _pair()
    a.write(b"x" * 40_000)
    datagrams = a.poll_transmit(0.0)
    assert len(datagrams) >= count + int(drop_first)
    acks = []
    for datagram in datagrams[int(drop_first) : count + int(drop_first)]:
        b.receive_packet(decode_packet(datagram), 0.001)
        if b.ack_due:
            acks += [decode_packet(d).ack for d in b.poll_transmit(0.001)]
    return acks


def test_a_clean_path_is_acked_every_sixteenth_packet_of_a_batch() -> None:
    assert ACK_EVERY_CLEAN == 16
    assert _batch(INITIAL_CWND, drop_first=False) == []  # the batch's end acks these
    a, b = _pair()
    a.write(b"x" * 200_000)
    last_ack, mid_batch = 0, []
    for _ in range(4):  # let the window grow past 16 packets
        for datagram in a.poll_transmit(0.0):
            b.receive_packet(decode_packet(datagram), 0.001)
            if b.ack_due:
                (ack,) = (decode_packet(d).ack for d in b.poll_transmit(0.001))
                mid_batch.append(ack - last_ack)
                last_ack = ack
        for datagram in b.poll_transmit(0.001):  # the batch's end
            last_ack = decode_packet(datagram).ack
            a.receive_packet(decode_packet(datagram), 0.002)
    assert mid_batch and set(mid_batch) == {16}


def test_after_a_hole_every_second_data_packet_is_acked() -> None:
    assert ACK_EVERY == 2
    acks = _batch(6, drop_first=True)  # packet 0 lost: 1-6 arrive out of order
    assert acks == [0, 0, 0]  # cumulative ack stays at the hole; SACKs carry the rest


def _enter_recovery() -> tuple[UDXStreamMachine, list[bytes]]:
    """A sends a full window; B gets packets 1-3 only and its SACK reaches A."""
    a, b = _pair()
    a.write(b"x" * (INITIAL_CWND * 1200))
    datagrams = a.poll_transmit(0.0)
    assert len(datagrams) == INITIAL_CWND
    for datagram in datagrams[1:4]:
        b.receive_packet(decode_packet(datagram), 0.005)
    (sack,) = b.poll_transmit(0.005)
    a.receive_packet(decode_packet(sack), 0.010)
    return a, a.poll_transmit(0.010)


def test_entering_recovery_resends_the_first_lost_packet_whatever_the_window() -> None:
    a, sent = _enter_recovery()
    assert a.cc.recovery_end is not None
    assert a.in_flight > a.cc.cwnd  # the halved window alone would hold it back
    assert [decode_packet(d).seq for d in sent] == [0]
    assert a.stats.retransmits == 1


def test_probes_repeat_in_recovery_before_the_timeout() -> None:
    a, _ = _enter_recovery()
    now = 0.010
    probes = []
    for _ in range(50):  # nothing comes back
        deadline = a.next_timeout()
        assert deadline is not None
        now = deadline
        a.handle_timeout(now)
        if a.stats.rto_count:
            break
        probes += [(now, decode_packet(d).seq) for d in a.poll_transmit(now)]
    assert a.stats.rto_count == 1
    assert len(probes) == _MAX_PROBES
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(probes)]
    assert all(gap > 0 for gap in gaps) and gaps == sorted(gaps)  # backing off
    assert probes[-1][0] < 0.010 + 0.2  # all of them well inside the first timeout
