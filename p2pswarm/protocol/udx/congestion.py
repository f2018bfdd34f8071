"""Sender-local policy of a UDX stream: RTT estimation, congestion window and pacing.

None of this is on the wire: a receiver sees only packets and acks, so the sender may pick
its own algorithms and still interoperate. libudx runs BBR; this side runs the classic
pair, RFC 6298 for the retransmission timer and NewReno (RFC 5681/6582, counted in packets
like libudx's cwnd) for the window, paced by a token bucket. NewReno halves its window on
loss, which is the behaviour that shares a lossy link fairly with other loss-based or
BBR flows; BBR would be a replacement of :class:`NewReno` alone.

All times are seconds, as floats, from an injected clock.
"""

from __future__ import annotations

__all__ = (
    "INITIAL_CWND",
    "INITIAL_PACING_RATE",
    "INITIAL_RTO",
    "MAX_BACKOFF_INTERVAL",
    "MAX_RTO",
    "MIN_RTO",
    "NewReno",
    "Pacer",
    "RttEstimator",
)

#: libudx floors its RTO at 1 s; a sender-local choice, so this side takes Linux TCP's 200 ms:
#: a lost retransmission at the tail of a burst then costs a fifth of a second, not one.
#: The first RTO, before any sample, stays libudx's (and RFC 6298's) 1 s.
MIN_RTO = 0.2
INITIAL_RTO = 1.0
#: Consecutive timeouts double the timer, up to this (then six of them are ~9 s at 200 ms).
MAX_BACKOFF_INTERVAL = 2.0
MAX_RTO = 30.0
_OUTLIER = 5.0
#: libudx's initial window, in packets.
INITIAL_CWND = 10
#: libudx's initial pacing rate (25 MB/s), until an RTT sample gives a better one.
INITIAL_PACING_RATE = 25_000_000.0
_MAX_CWND = 8192
#: How far ahead the pacer lets a burst run: a Python event loop wakes up coarsely.
_BURST_TIME = 0.004
_MIN_BURST_PACKETS = 16


class RttEstimator:
    """RFC 6298 with libudx's outlier clamp (``ack_packet``, ``clamp_rtt``)."""

    __slots__ = ("min_rtt", "rto", "rttvar", "srtt")

    def __init__(self) -> None:
        self.srtt = 0.0
        self.rttvar = 0.0
        self.rto = INITIAL_RTO
        self.min_rtt = float("inf")

    @property
    def has_sample(self) -> bool:
        return self.min_rtt != float("inf")

    def clamp(self, rtt: float) -> float:
        """An RTT sample with suspend-length outliers cut down (libudx ``clamp_rtt``)."""
        if not self.has_sample:
            return min(rtt, MAX_RTO)
        threshold = self.srtt + 5 * self.rttvar
        if rtt > threshold and rtt > _OUTLIER:
            return min(threshold, MAX_RTO)
        return rtt

    def sample(self, rtt: float) -> None:
        """Take one RTT sample from a packet that was sent once (Karn's rule)."""
        rtt = max(self.clamp(rtt), 0.0)
        if not self.has_sample:
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            self.rttvar = (3 * self.rttvar + abs(self.srtt - rtt)) / 4
            self.srtt = (7 * self.srtt + rtt) / 8
        self.min_rtt = min(self.min_rtt, rtt)
        self.rto = min(max(self.srtt + 4 * self.rttvar, MIN_RTO), MAX_RTO)


class NewReno:
    """A congestion window in packets: slow start, congestion avoidance, one halving per
    loss episode (fast recovery until the packets outstanding at the loss are acked), and a
    window of one after a retransmission timeout."""

    __slots__ = ("_acked", "_after_rto", "cwnd", "recovery_end", "ssthresh")

    def __init__(self) -> None:
        self.cwnd = INITIAL_CWND
        self.ssthresh = _MAX_CWND
        self.recovery_end: int | None = None
        self._acked = 0
        self._after_rto = False

    @property
    def in_slow_start(self) -> bool:
        return self.cwnd < self.ssthresh

    def on_ack(self, delivered: int) -> None:
        if delivered <= 0 or (self.recovery_end is not None and not self._after_rto):
            return
        if self.cwnd < self.ssthresh:
            self.cwnd = min(self.cwnd + delivered, _MAX_CWND)
            return
        self._acked += delivered
        while self._acked >= self.cwnd:
            self._acked -= self.cwnd
            self.cwnd = min(self.cwnd + 1, _MAX_CWND)

    def on_loss(self, in_flight: int, high_seq: int) -> None:
        """A loss detected by acks (RACK): halve once per episode, ending at ``high_seq``."""
        if self.recovery_end is not None:
            return
        self.ssthresh = max(max(self.cwnd, in_flight) // 2, 2)
        self.cwnd = self.ssthresh
        self._acked = 0
        self.recovery_end = high_seq

    def on_recovered(self) -> None:
        self.recovery_end = None
        self._after_rto = False

    def on_rto(self, high_seq: int) -> None:
        """A retransmission timeout: everything in flight is presumed lost."""
        if self.recovery_end is None:
            self.ssthresh = max(self.cwnd // 2, 2)
        self.cwnd = 1
        self._acked = 0
        self.recovery_end = high_seq
        self._after_rto = True  # slow start back up; no second halving this episode


class Pacer:
    """A token bucket spreading a window's packets over the RTT instead of one burst.

    The rate is a multiple of cwnd / srtt (2x in slow start, 1.25x after, as Linux paces);
    the bucket holds a few milliseconds of it so that a coarse event loop still fills the
    window.
    """

    __slots__ = ("_last", "rate", "tokens")

    def __init__(self, now: float) -> None:
        self.rate = INITIAL_PACING_RATE
        self.tokens = self._capacity(1200)
        self._last = now

    def _capacity(self, packet_size: int) -> float:
        return max(_MIN_BURST_PACKETS * packet_size, self.rate * _BURST_TIME)

    def update_rate(self, cwnd: int, packet_size: int, srtt: float, slow_start: bool) -> None:
        if srtt <= 0:
            return
        gain = 2.0 if slow_start else 1.25
        self.rate = max(gain * cwnd * packet_size / srtt, 10.0 * packet_size)

    def refill(self, now: float, packet_size: int) -> None:
        elapsed = now - self._last
        if elapsed > 0:
            self.tokens = min(self.tokens + elapsed * self.rate, self._capacity(packet_size))
            self._last = now

    def may_send(self) -> bool:
        return self.tokens > 0

    def spend(self, size: int) -> None:
        self.tokens -= size

    def next_send_time(self, now: float) -> float:
        """When the bucket is positive again."""
        if self.tokens > 0:
            return now
        return now + (-self.tokens + 1) / self.rate
