"""One UDX stream as a sans-IO state machine: packets and a clock in, packets and bytes out.

The I/O edge drives it with four calls, in any order, from one thread::

    machine.receive_packet(packet, now)   # a decoded packet for this stream's local id
    machine.handle_timeout(now)           # when now >= machine.next_timeout()
    for datagram in machine.poll_transmit(now): send it to the remote address
    machine.read(n), machine.messages     # what arrived

and the application's ``write``, ``end``, ``send_message``, ``destroy``. Nothing here
blocks or reads a clock: ``now`` is passed in, so tests run two machines through a lossy
fake link on a fake clock.

What follows libudx (``src/udx.c``) because the peer can see it: packet numbering (DATA,
END and DESTROY take a seq; MESSAGE, HEARTBEAT and acks carry the current one), an ack
(with SACK blocks) for every batch of DATA/END received and for every HEARTBEAT, the rwnd
window-update rules (TCP's wl1/wl2), payload of ``mtu - 48`` bytes and MTU probes padded
through the data offset, END in both orders, DESTROY, six timeouts of one packet end the
stream. What is ours because only the sender sees it: loss detection (RACK-style, by time
against the newest delivered packet, plus a tail-loss probe), NewReno and pacing
(:mod:`.congestion`). One deliberate difference: acks are coalesced per :meth:`poll_transmit`
(once per socket wake-up) instead of one per packet, which costs a Python receiver half its
datagrams and changes nothing a libudx sender relies on.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from p2pswarm.errors import UDXError, UDXResetError, UDXTimeoutError

from .congestion import MAX_BACKOFF_INTERVAL, NewReno, Pacer, RttEstimator
from .packet import (
    DATA,
    DESTROY,
    END,
    HEARTBEAT,
    MESSAGE,
    SACK,
    Packet,
    encode_header,
)
from .receiver import DEFAULT_RWND_MAX, ReceiveBuffer, seq_diff

__all__ = (
    "HIGH_WATER_MARK",
    "IPV4_OVERHEAD",
    "MAX_RTO_TIMEOUTS",
    "MTU_BASE",
    "MTU_MAX",
    "UDXStreamMachine",
)

MTU_BASE = 1200
MTU_MAX = 1500
MTU_STEP = 32
MTU_MAX_PROBES = 3
#: IPv4 20 + UDP 8 + UDX 20: payload per packet is ``mtu - 48``.
IPV4_OVERHEAD = 48
#: libudx ``UDX_MAX_RTO_TIMEOUTS``.
MAX_RTO_TIMEOUTS = 6
#: libudx ``UDX_HIGH_WATERMARK``: writes wait above this much unsent-or-unacked data.
HIGH_WATER_MARK = 262_144
#: Data packets received per ack sent, at most (see :attr:`UDXStreamMachine.ack_due`):
#: every second one after a sign of loss, as RFC 9293 asks of TCP, else every sixteenth
#: (about one GRO batch of Linux's, which acks once per batch).
ACK_EVERY = 2
ACK_EVERY_CLEAN = 16
#: How many data packets the quick acks last after a hole or a duplicate (Linux's
#: quickack mode has the same idea).
QUICKACK_PACKETS = 64
#: The floor of the probe timeout (2 x srtt). Linux's 10 ms assumes a peer that delays its
#: acks; UDX ends (libudx and ours) ack as soon as a batch of datagrams is read, and a
#: spurious probe costs one duplicate packet, never the window, so the floor only has to
#: cover event-loop jitter. On a LAN 10 ms was most of the time lost at 5 % loss.
_MIN_TLP = 0.002
_TLP_ACK_DELAY = 0.002
#: Probes sent before the retransmission timeout takes over, each after twice the last
#: wait (RFC 9002 6.2.4 sends up to two per expiry and backs off the timer).
_MAX_PROBES = 3
_MASK = 0xFFFFFFFF

_MTU_BASE_STATE, _MTU_SEARCH, _MTU_DONE = 1, 2, 4


@dataclass(slots=True)
class _Sent:
    seq: int
    type: int
    payload: bytes
    time_sent: float = 0.0
    transmits: int = 0
    lost: bool = False
    rto_timeouts: int = 0
    padding: int = 0
    order: int = 0  # the transmission's place in send order (RACK's "sent after")


@dataclass(slots=True)
class _Stats:
    packets_sent: int = 0
    packets_received: int = 0
    retransmits: int = 0
    rto_count: int = 0
    fast_recoveries: int = 0
    zero_window_probes: int = 0
    dropped_sacks: int = 0
    ignored_acks: int = 0


class UDXStreamMachine:
    """The state of one stream. ``local_id`` is what the peer writes in its headers."""

    def __init__(
        self,
        local_id: int,
        *,
        now: float,
        rwnd_max: int = DEFAULT_RWND_MAX,
        keepalive: float | None = None,
        seq: int = 0,
        max_timeouts: int = MAX_RTO_TIMEOUTS,
    ) -> None:
        if not 0 <= local_id <= _MASK:
            raise ValueError(f"a stream id is a u32, got {local_id}")
        self.local_id = local_id
        self.remote_id = 0
        self.connected = False
        #: Set once the stream is over; ``error`` says why (None: both ends ended cleanly).
        self.closed = False
        self.error: UDXError | None = None
        self.keepalive = keepalive
        #: Timeouts of one packet that end the stream (libudx: 6).
        self.max_timeouts = max_timeouts
        self.messages: deque[bytes] = deque()
        self.stats = _Stats()
        #: Counts completed remote changes (``change_remote`` acted on).
        self.remote_changes = 0

        self.recv = ReceiveBuffer(rwnd_max=rwnd_max)
        self._ack_needed = False
        self._data_since_ack = 0
        self._quickack = 0
        self._advertised = rwnd_max

        self.seq = seq & _MASK
        self.remote_acked = self.seq
        self.send_rwnd = DEFAULT_RWND_MAX
        self._wl1 = 0
        self._wl2 = self.seq
        self._queue: deque[memoryview] = deque()
        self._queued = 0
        self._unacked = 0
        self._end_wanted = False
        self._end_seq: int | None = None
        self.ended = False  # our END was acked
        self._destroy_wanted = False
        self._heartbeat_wanted = False
        self._outbox_messages: deque[bytes] = deque()
        self._out: dict[int, _Sent] = {}
        self._inflight: OrderedDict[int, _Sent] = OrderedDict()
        self._lost: OrderedDict[int, _Sent] = OrderedDict()

        self.rtt = RttEstimator()
        self.cc = NewReno()
        self.pacer = Pacer(now)
        self._rack_time = -1.0
        self._rack_order = -1  # send order of the newest delivered transmission
        self._transmissions = 0
        self._rack_rtt = 0.0
        self._rack_fack = self.seq
        self._reordering_seen = False
        self._probes = 0
        self._send_one = False
        self._zwp_arm = False

        self.mtu = MTU_BASE
        self._mtu_state = _MTU_BASE_STATE
        self._mtu_probe_size = MTU_BASE
        self._mtu_probe_count = 0
        self._mtu_probe_wanted = False

        self._remote_changing_at: int | None = None

        self._rto_at: float | None = None
        self._rto_backoff = 0
        self._reo_at: float | None = None
        self._tlp_at: float | None = None
        self._zwp_at: float | None = None
        self._keepalive_at: float | None = None
        self._pace_at: float | None = None

    # -- properties ---------------------------------------------------------------------

    @property
    def max_payload(self) -> int:
        return self.mtu - IPV4_OVERHEAD

    @property
    def send_buffered(self) -> int:
        """Bytes written and not yet acknowledged (queued or in flight)."""
        return self._queued + self._unacked

    @property
    def write_blocked(self) -> bool:
        """Whether a writer should wait (libudx's high-water mark plus the send window)."""
        window = min(self.cc.cwnd * self.max_payload, self.send_rwnd)
        return self.send_buffered > HIGH_WATER_MARK + window

    @property
    def ack_due(self) -> bool:
        """Whether the packets received since the last ack should be acked now, before the
        rest of a batch of datagrams is read. On a lossy path (a hole or a duplicate seen
        in the last 64 data packets), every second data packet: with one ack per batch, a
        small window's single lost ack hides the whole flight from the sender until a
        probe. On a clean path every sixteenth: each ack costs the sender an ack's
        processing, and at 5 % loss per-batch acks measured 20 MB/s against 31 with
        quick acks, but at no loss 122 MB/s against 78 (one process, 16 MiB)."""
        return self._data_since_ack >= (ACK_EVERY if self._quickack else ACK_EVERY_CLEAN)

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    @property
    def eof(self) -> bool:
        return self.recv.eof

    @property
    def readable(self) -> int:
        return self.recv.readable

    @property
    def ack_pending(self) -> bool:
        """An ack (or window update) waits for the next :meth:`poll_transmit`."""
        return self._ack_needed

    @property
    def remote_changing(self) -> bool:
        return self._remote_changing_at is not None

    # -- application side ---------------------------------------------------------------

    def connect(self, remote_id: int, now: float) -> None:
        if self.closed:
            raise UDXError("the stream is closed")
        if self.connected:
            raise UDXError("the stream is already connected")
        self.remote_id = remote_id & _MASK
        self.connected = True
        if self.keepalive:
            self._keepalive_at = now + self.keepalive

    def change_remote(self, remote_id: int) -> bool:
        """Point the stream at a new remote id (the edge changes the address). True when it
        took effect at once; otherwise it completes, and ``remote_changes`` counts up, once
        every packet sent to the old remote is acked (libudx ``change_remote``)."""
        if not self.connected or self.closed:
            raise UDXError("only a connected, open stream can change its remote")
        self.remote_id = remote_id & _MASK
        self._reset_mtu()
        if self.seq == self.remote_acked:
            self._remote_changing_at = None
            self.remote_changes += 1
            return True
        self._remote_changing_at = self.seq
        return False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            raise UDXError("the stream is closed")
        if self._end_wanted:
            raise UDXError("the stream was ended for writing")
        if not data:
            return
        view = memoryview(bytes(data)) if not isinstance(data, bytes) else memoryview(data)
        self._queue.append(view)
        self._queued += len(view)
        if self.send_rwnd == 0 and self._zwp_at is None and self._queued == len(view):
            self._heartbeat_wanted = True
            self._zwp_arm = True  # armed at the next poll, one RTO out

    def end(self) -> None:
        """Half-close: an END after everything written (idempotent)."""
        if self.closed or self._end_wanted:
            return
        self._end_wanted = True

    def send_message(self, data: bytes) -> None:
        """An unordered, unreliable datagram on this stream (a UDX MESSAGE)."""
        if self.closed:
            raise UDXError("the stream is closed")
        if len(data) > 65_507 - 20:
            raise ValueError("a UDX message must fit one UDP datagram")
        self._outbox_messages.append(bytes(data))

    def destroy(self) -> None:
        """Abort: one DESTROY goes out at the next poll, then the stream is closed."""
        if self.closed:
            return
        if not self.connected:
            self._close(None)
            return
        self._destroy_wanted = True

    def read(self, max_bytes: int) -> bytes:
        data = self.recv.read(max_bytes)
        if data and self.connected and not self.closed:
            # A window that had shrunk reopens: tell the sender rather than wait for its probe.
            rwnd = self.recv.rwnd()
            if self._advertised < self.recv.rwnd_max // 2 <= rwnd:
                self._ack_needed = True
        return data

    # -- packets in ---------------------------------------------------------------------

    def receive_packet(self, packet: Packet, now: float) -> None:
        """Process one packet addressed to this stream (its ``stream_id`` is our local id)."""
        if self.closed:
            return
        self.stats.packets_received += 1
        type_ = packet.type
        if type_ & HEARTBEAT:
            self._ack_needed = True
            return
        recv = self.recv
        ahead = seq_diff(packet.seq, recv.ack)
        if type_ & (DATA | END):
            if ahead != 0:  # a hole before it, or a resend of what we have: loss somewhere
                self._quickack = QUICKACK_PACKETS
            elif self._quickack:
                self._quickack -= 1
        if ahead >= 0:
            if type_ & (DATA | END):
                recv.on_data(type_, packet.seq, packet.payload)
            if type_ & DESTROY:
                self._close(UDXResetError("the remote end destroyed the stream"))
                return
        if type_ & MESSAGE:
            self.messages.append(packet.payload)
        if type_ & (DATA | END):
            self._ack_needed = True
            self._data_since_ack += 1
        self._on_ack(packet, now)

    def _on_ack(self, packet: Packet, now: float) -> None:
        ack = packet.ack
        if seq_diff(self.seq, ack) < 0:
            self.stats.ignored_acks += 1  # an ack for packets never sent
            return
        if seq_diff(ack, self.remote_acked) >= 0 and (
            seq_diff(self._wl1, packet.seq) < 0
            or (self._wl1 == packet.seq and seq_diff(self._wl2, ack) <= 0)
        ):
            self.send_rwnd = packet.rwnd
            self._wl1 = packet.seq
            self._wl2 = ack
            if packet.rwnd > 0:
                self._zwp_at = None
        if self._remote_changing_at is not None and seq_diff(ack, self._remote_changing_at) >= 0:
            self._remote_changing_at = None
            self.remote_changes += 1

        had_inflight = self.seq != self.remote_acked
        delivered = 0
        advanced = seq_diff(ack, self.remote_acked) > 0
        if advanced:
            self._rto_backoff = 0
        while seq_diff(ack, self.remote_acked) > 0:
            seq = self.remote_acked
            self.remote_acked = (seq + 1) & _MASK
            if self._ack_one(seq, now, sack=False):
                delivered += 1
        for start, end in packet.sacks:
            if (
                seq_diff(end, self.seq) > 0
                or seq_diff(start, end) >= 0
                or seq_diff(start, self.remote_acked) < 0
            ):
                self.stats.dropped_sacks += 1
                continue
            seq = start
            while seq != end:
                if self._ack_one(seq, now, sack=True):
                    delivered += 1
                seq = (seq + 1) & _MASK
        if advanced:
            self._probes = 0
        if self.cc.recovery_end is not None and seq_diff(ack, self.cc.recovery_end) > 0:
            self.cc.on_recovered()
        end_seq = self._end_seq
        if not self.ended and end_seq is not None and seq_diff(self.remote_acked, end_seq) > 0:
            self.ended = True
            self._ack_needed = True  # a final state packet, as libudx sends
        if not had_inflight:
            return
        if delivered:
            self.cc.on_ack(delivered)
            self._update_pacing()
            if self.seq == self.remote_acked:
                self._rto_at = self._tlp_at = self._reo_at = None
                if self.send_rwnd == 0 and (self._queued or self._end_pending):
                    self._zwp_at = now + self.rtt.rto
                elif self.keepalive:
                    self._keepalive_at = now + self.keepalive
            else:
                self._rto_at = now + self.rtt.rto
                self._rack_detect(now)
        elif advanced:
            self._rto_at = now + self.rtt.rto

    @property
    def _sacked(self) -> int:
        """Packets past ``remote_acked`` that a SACK already delivered."""
        return seq_diff(self.seq, self.remote_acked) - len(self._out)

    @property
    def _end_pending(self) -> bool:
        return self._end_wanted and self._end_seq is None

    def _ack_one(self, seq: int, now: float, *, sack: bool) -> bool:
        pkt = self._out.pop(seq, None)
        if pkt is None:
            return False
        if pkt.lost:
            del self._lost[seq]
        else:
            self._inflight.pop(seq, None)
        self._unacked -= len(pkt.payload)
        if self._mtu_state == _MTU_SEARCH and self._mtu_probe_count > 0 and pkt.padding:
            self._mtu_probe_count = 0
            self.mtu = self._mtu_probe_size
            if self._mtu_probe_size >= MTU_MAX:
                self._mtu_state = _MTU_DONE
            else:
                self._mtu_probe_size = min(self._mtu_probe_size + MTU_STEP, MTU_MAX)
                self._mtu_probe_wanted = True
        if self._mtu_state == _MTU_BASE_STATE:
            self._mtu_state = _MTU_SEARCH
            self._mtu_probe_size = self.mtu + MTU_STEP
            self._mtu_probe_wanted = True
        rtt = self.rtt.clamp(now - pkt.time_sent)
        if pkt.transmits == 1:
            self.rtt.sample(rtt)
        if pkt.transmits == 1 or rtt >= self.rtt.min_rtt:
            self._rack_rtt = rtt
            if pkt.order > self._rack_order:
                self._rack_time = pkt.time_sent
                self._rack_order = pkt.order
        nxt = (seq + 1) & _MASK
        if seq_diff(nxt, self._rack_fack) > 0:
            self._rack_fack = nxt
        elif seq_diff(nxt, self._rack_fack) < 0 and pkt.transmits == 1:
            self._reordering_seen = True
        return True

    def _reo_wnd(self) -> float:
        if not self._reordering_seen and (self.cc.recovery_end is not None or self._sacked >= 3):
            return 0.0
        if not self.rtt.has_sample:
            return 0.0
        return min(self.rtt.min_rtt / 4, self.rtt.srtt)

    def _rack_detect(self, now: float) -> None:
        """RFC 8985 6.2: a packet sent before the newest delivered one, and older than one
        RTT plus the reordering window, is lost; the nearest other one arms the timer."""
        reo = self._reo_wnd()
        wait = 0.0
        lost_any = False
        lost: list[_Sent] = []
        # ``_inflight`` is in send order (a retransmission goes to its end), so the packets
        # sent before the newest delivered one are a prefix of it: an ack costs the packets
        # it can declare lost, not the whole window. RFC 8985 orders by time, then sequence;
        # the send order is the same order without ties.
        rack_order = self._rack_order
        for pkt in self._inflight.values():
            if pkt.order >= rack_order:
                break
            remaining = pkt.time_sent + self._rack_rtt + reo - now
            if remaining <= 0:
                lost.append(pkt)
            else:
                wait = max(wait, remaining)
        for pkt in lost:
            lost_any = lost_any or not pkt.padding
            self._mark_lost(pkt)
        if lost_any and self.cc.recovery_end is None:
            self.stats.fast_recoveries += 1
            self.cc.on_loss(len(self._inflight) + len(self._lost), self.seq)
            self._update_pacing()
            self._probes = 0
            # RFC 5681 3.2 / RFC 6937: the first lost packet goes out at once, whatever the
            # halved window says. Waiting for acks to open the window instead stalls the
            # stream until the timeout when the one ack covering the flight is lost.
            self._send_one = True
        self._reo_at = now + wait if wait > 0 else None

    def _mark_lost(self, pkt: _Sent) -> None:
        del self._inflight[pkt.seq]
        pkt.lost = True
        self._lost[pkt.seq] = pkt
        if pkt.padding:
            pkt.padding = 0  # resent at the base size
            if self._mtu_state == _MTU_SEARCH:
                if self._mtu_probe_count >= MTU_MAX_PROBES:
                    self._mtu_state = _MTU_DONE
                else:
                    self._mtu_probe_wanted = True

    def _update_pacing(self) -> None:
        self.pacer.update_rate(
            self.cc.cwnd,
            self.mtu,
            self.rtt.srtt if self.rtt.has_sample else 0.0,
            self.cc.in_slow_start,
        )

    def _reset_mtu(self) -> None:
        self.mtu = MTU_BASE
        self._mtu_state = _MTU_BASE_STATE
        self._mtu_probe_count = 0
        self._mtu_probe_size = MTU_BASE
        self._mtu_probe_wanted = False

    # -- timers -------------------------------------------------------------------------

    def next_timeout(self) -> float | None:
        """The earliest time :meth:`handle_timeout` has work, or None."""
        if self.closed:
            return None
        best: float | None = None
        for at in (
            self._rto_at,
            self._reo_at,
            self._tlp_at,
            self._zwp_at,
            self._keepalive_at,
            self._pace_at,
        ):
            if at is not None and (best is None or at < best):
                best = at
        return best

    def handle_timeout(self, now: float) -> None:
        if self.closed:
            return
        if self._pace_at is not None and now >= self._pace_at:
            self._pace_at = None
        if self._reo_at is not None and now >= self._reo_at:
            self._reo_at = None
            self._rack_detect(now)
        if self._tlp_at is not None and now >= self._tlp_at:
            self._tlp_at = None
            self._tail_loss_probe(now)
        if self._rto_at is not None and now >= self._rto_at:
            self._rto_at = None
            self._on_rto(now)
            if self.closed:
                return
        if self._zwp_at is not None and self._zwp_at <= now:
            if self.send_rwnd == 0 and (self._queued or self._end_pending):
                self.stats.zero_window_probes += 1
                self._heartbeat_wanted = True
                self._zwp_at = now + 2 * self.rtt.rto
            else:
                self._zwp_at = None
        if self._keepalive_at is not None and now >= self._keepalive_at:
            if self.seq == self.remote_acked and self.keepalive:
                self._heartbeat_wanted = True
                self._keepalive_at = now + self.keepalive
            else:
                self._keepalive_at = None

    def _tail_loss_probe(self, now: float) -> None:
        """RFC 8985 7.3, the retransmitting half: resend the newest packet in flight so that
        a lost tail is detected by an ack within two RTTs instead of a timeout. Unanswered,
        the probe is sent again after twice the wait, up to ``_MAX_PROBES`` times: with a
        small window under loss the probe's own ack is lost often enough that a single
        probe leaves too many stalls to the 200 ms timeout."""
        if not self._inflight:
            return
        pkt = next(reversed(self._inflight.values()))
        self._mark_lost(pkt)
        self._send_one = True  # a probe goes out whatever the window says (as in Linux)
        self._probes += 1
        if self._probes < _MAX_PROBES and self._rto_at is not None:
            wait = self._probe_wait() * 2**self._probes
            self._tlp_at = min(now + wait, self._rto_at)

    def _probe_wait(self) -> float:
        wait = max(2 * self.rtt.srtt, _MIN_TLP)
        if len(self._inflight) <= 1:
            wait += _TLP_ACK_DELAY
        return wait

    def _on_rto(self, now: float) -> None:
        if self.seq == self.remote_acked:
            return
        self.stats.rto_count += 1
        self._probes = 0
        self._tlp_at = self._reo_at = None
        self._rto_backoff += 1
        interval = max(self.rtt.rto, min(self.rtt.rto * 2**self._rto_backoff, MAX_BACKOFF_INTERVAL))
        self._rto_at = now + interval
        reo = self._reo_wnd()
        for seq, pkt in list(self._out.items()):
            if pkt.lost:
                # Already waiting for its retransmission (libudx ``udx_rto_timeout`` queues
                # it and goes on): a timeout counts only against a packet that went out
                # again and still went unanswered, so a retransmission held back by cwnd or
                # pacing cannot run a live stream out of timeouts.
                continue
            remaining = pkt.time_sent + self._rack_rtt + reo - now
            if seq == self.remote_acked or remaining < 0:
                if pkt.rto_timeouts >= self.max_timeouts:
                    if self.recv.eof and not self._unacked and not self._queued:
                        # Only our (empty) END is unanswered and the remote had ended: it
                        # closed after acking our END and the ack was lost. Nothing is lost.
                        self.ended = True
                        self._close(None)
                        return
                    reason = f"a packet went unacknowledged through {self.max_timeouts} timeouts"
                    self._close(UDXTimeoutError(reason))
                    return
                pkt.rto_timeouts += 1
                self._mark_lost(pkt)
        if self._lost:
            # Oldest first: the retransmit queue is in sequence order after a timeout.
            base = self.remote_acked
            ordered = sorted(self._lost.items(), key=lambda item: seq_diff(item[0], base))
            self._lost = OrderedDict(ordered)
        self.cc.on_rto(self.seq)
        self._update_pacing()

    # -- packets out --------------------------------------------------------------------

    def _header(self, type_: int, seq: int, padding: int = 0) -> bytes:
        rwnd = self.recv.rwnd()
        self._advertised = rwnd
        return encode_header(type_, self.remote_id, rwnd, seq, self.recv.ack, padding)

    def _ack_packet(self) -> bytes:
        blocks = self.recv.sack_blocks()
        if not blocks:
            return self._header(0, self.seq)
        body = b"".join(s.to_bytes(4, "little") + e.to_bytes(4, "little") for s, e in blocks)
        return self._header(SACK, self.seq) + body

    def _transmit(self, pkt: _Sent, now: float) -> bytes:
        pkt.time_sent = now
        pkt.transmits += 1
        pkt.order = self._transmissions
        self._transmissions += 1
        self._inflight[pkt.seq] = pkt
        self.pacer.spend(len(pkt.payload) + IPV4_OVERHEAD + pkt.padding)
        self.stats.packets_sent += 1
        head = self._header(pkt.type, pkt.seq, pkt.padding)
        if pkt.padding:
            return head + bytes(pkt.padding) + pkt.payload
        return head + pkt.payload

    def _take(self, size: int) -> bytes:
        parts: list[bytes] = []
        queue = self._queue
        while size and queue:
            view = queue[0]
            if len(view) <= size:
                queue.popleft()
                whole = view.obj
                parts.append(
                    whole
                    if isinstance(whole, bytes) and len(whole) == len(view)
                    else view.tobytes()
                )
                size -= len(view)
            else:
                parts.append(view[:size].tobytes())
                queue[0] = view[size:]
                size = 0
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._queued -= len(data)
        return data

    def poll_transmit(self, now: float) -> list[bytes]:
        """Every datagram due now, in order: the DESTROY, messages, retransmissions, new
        data (as cwnd, rwnd and pacing allow), a probe, an ack."""
        if self.closed or not self.connected:
            return []
        out: list[bytes] = []
        if self._destroy_wanted:
            out.append(self._header(DESTROY, self.seq))
            self.seq = (self.seq + 1) & _MASK
            self._close(None)
            return out
        while self._outbox_messages:
            out.append(self._header(MESSAGE, self.seq) + self._outbox_messages.popleft())
        pacer = self.pacer
        pacer.refill(now, self.mtu)
        sent_data = False
        cwnd = self.cc.cwnd
        if self._send_one:
            self._send_one = False
            if self._lost:
                _, pkt = self._lost.popitem(last=False)
                pkt.lost = False
                self.stats.retransmits += 1
                out.append(self._transmit(pkt, now))
                sent_data = True
        while self._lost and len(self._inflight) < cwnd and pacer.may_send():
            _, pkt = self._lost.popitem(last=False)
            pkt.lost = False
            self.stats.retransmits += 1
            out.append(self._transmit(pkt, now))
            sent_data = True
        rwnd = self.send_rwnd
        window = min(cwnd, max(rwnd // self.max_payload, 1)) if rwnd else 0
        while (
            (self._queued or self._end_pending)
            and len(self._inflight) < window
            and not self._lost
            and pacer.may_send()
        ):
            capacity = self.max_payload
            if self._queued:
                payload = self._take(capacity)
                type_ = DATA
            else:
                # END always travels alone, so that an unanswered END carries no data
                # (see _on_rto).
                payload = b""
                type_ = END
                self._end_seq = self.seq
            pkt = _Sent(self.seq, type_, payload)
            if (
                self._mtu_probe_wanted
                and len(payload) == capacity
                and self._remote_changing_at is None
            ):
                padding = self._mtu_probe_size - (len(payload) + IPV4_OVERHEAD)
                if 0 < padding <= 255:
                    pkt.padding = padding
                    self._mtu_probe_count += 1
                    self._mtu_probe_wanted = False
            self._out[pkt.seq] = pkt
            self._unacked += len(payload)
            self.seq = (self.seq + 1) & _MASK
            out.append(self._transmit(pkt, now))
            sent_data = True
        if (self._lost or self._queued or self._end_pending) and not pacer.may_send():
            self._pace_at = pacer.next_send_time(now)
        if sent_data:
            if self._rto_at is None:
                self._rto_at = now + self.rtt.rto
            # A probe is armed in recovery too (QUIC's PTO, RFC 9002 6.2, rather than TCP's
            # TLP, which waits for the timeout there): a flight of two or three packets is
            # common under loss, and its one lost ack would otherwise cost a whole RTO.
            if not self._probes and self.rtt.has_sample:
                self._tlp_at = min(now + self._probe_wait(), self._rto_at)
            self._keepalive_at = None
        if self._zwp_arm:
            self._zwp_arm = False
            self._zwp_at = now + self.rtt.rto
        if self._heartbeat_wanted:
            self._heartbeat_wanted = False
            out.append(self._header(HEARTBEAT, self.seq))
        if self._ack_needed:
            self._ack_needed = False
            self._data_since_ack = 0
            if sent_data and not self.recv.buffered_out_of_order:
                pass  # the data packets carried the same ack
            else:
                out.append(self._ack_packet())
        if self.ended and self.recv.eof:
            self._close(None)
        return out

    def _close(self, error: UDXError | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.error = error
        self._out.clear()
        self._inflight.clear()
        self._lost.clear()
        self._queue.clear()
        self._queued = self._unacked = 0
        self._rto_at = self._reo_at = self._tlp_at = None
        self._zwp_at = self._keepalive_at = self._pace_at = None
