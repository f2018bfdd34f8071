"""Loss recovery when the acks are lost too: every second packet acked, the first lost
packet resent at once, probes that repeat before the timeout. These are the cases that
stalled a stream for a whole RTO at a few percent of loss on a short path."""

from __future__ import annotations

import itertools

from p2pswarm.protocol.udx import UDXStreamMachine, decode_packet
from p2pswarm.protocol.udx.congestion import INITIAL_CWND
from p2pswarm.protocol.udx.stream import _MAX_PROBES, ACK_EVERY


def _pair() -> tuple[UDXStreamMachine, UDXStreamMachine]:
    a = UDXStreamMachine(1, now=0.0)
    b = UDXStreamMachine(2, now=0.0)
    a.connect(2, 0.0)
    b.connect(1, 0.0)
    return a, b


def test_the_receiver_acks_every_second_data_packet_of_a_batch() -> None:
    a, b = _pair()
    a.write(b"x" * 10_000)
    datagrams = a.poll_transmit(0.0)
    assert len(datagrams) >= 6
    acks = []
    for datagram in datagrams[:6]:  # one batch read from the socket
        b.receive_packet(decode_packet(datagram), 0.001)
        if b.ack_due:
            acks += b.poll_transmit(0.001)
    assert ACK_EVERY == 2
    assert [decode_packet(d).ack for d in acks] == [2, 4, 6]
    assert not b.ack_due


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
