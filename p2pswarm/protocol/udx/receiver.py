"""The receiving half of a UDX stream: packets in by sequence number, bytes out in order.

libudx numbers packets, not bytes: ``ack`` is the next packet wanted; a DATA or END packet
at ``ack`` is delivered at once, one further ahead waits in a buffer keyed by its seq until
the gap closes. An END consumes a seq like data; the stream's end of file is reached when
``ack`` passes it.

Unlike libudx, whose out-of-order buffer grows with whatever arrives, this buffer is
bounded twice: by distance (a seq more than :data:`MAX_AHEAD` packets past ``ack`` is
dropped) and by bytes (unread plus buffered stays within twice the advertised window).
A dropped packet is only a loss to the sender, which retransmits it.
"""

from __future__ import annotations

from collections import deque

from .packet import DATA, END, MAX_SACKS

__all__ = ("DEFAULT_RWND_MAX", "MAX_AHEAD", "ReceiveBuffer", "seq_diff")

#: libudx's receive window (``UDX_DEFAULT_RWND_MAX``).
DEFAULT_RWND_MAX = 4 * 1024 * 1024
#: Packets past ``ack`` worth buffering: more than a 4 MiB window of 1152-byte packets.
MAX_AHEAD = 8192


def seq_diff(a: int, b: int) -> int:
    """``a - b`` in 32-bit sequence space, as a signed number (libudx ``seq_diff``)."""
    d = (a - b) & 0xFFFFFFFF
    return d - 0x100000000 if d & 0x80000000 else d


class ReceiveBuffer:
    """In-order delivery, the out-of-order buffer, the receive window and SACK blocks."""

    __slots__ = (
        "_chunks",
        "_ooo",
        "_ooo_bytes",
        "_readable_bytes",
        "ack",
        "dropped",
        "end_seq",
        "eof",
        "rwnd_max",
    )

    def __init__(self, *, ack: int = 0, rwnd_max: int = DEFAULT_RWND_MAX) -> None:
        self.ack = ack & 0xFFFFFFFF
        self.rwnd_max = rwnd_max
        self._ooo: dict[int, tuple[int, bytes]] = {}
        self._ooo_bytes = 0
        self._chunks: deque[bytes] = deque()
        self._readable_bytes = 0
        #: The seq of the remote's END once it arrived (in order or not).
        self.end_seq: int | None = None
        #: Every byte up to the remote's END is readable (or read).
        self.eof = False
        #: Packets refused by the bounds (too far ahead, or over the byte budget).
        self.dropped = 0

    @property
    def readable(self) -> int:
        """Bytes delivered in order and not read yet."""
        return self._readable_bytes

    @property
    def buffered_out_of_order(self) -> int:
        return len(self._ooo)

    def rwnd(self) -> int:
        """The window to advertise: the maximum less what the reader has not taken."""
        return max(self.rwnd_max - self._readable_bytes, 0)

    def on_data(self, type_: int, seq: int, payload: bytes) -> bool:
        """Take a DATA and/or END packet; True when it moved ``ack`` (new in-order data)."""
        ahead = seq_diff(seq, self.ack)
        if ahead < 0 or self.eof:
            return False  # a duplicate of something delivered
        if type_ & END and self.end_seq is None:
            self.end_seq = seq & 0xFFFFFFFF
        if ahead == 0:
            self._deliver(type_, payload)
            self._drain()
            return True
        if seq in self._ooo:
            return False
        budget = 2 * self.rwnd_max
        if (
            ahead >= MAX_AHEAD
            or self._readable_bytes + self._ooo_bytes + len(payload) > budget
            or (self.end_seq is not None and seq_diff(seq, self.end_seq) > 0)
        ):
            self.dropped += 1
            return False
        self._ooo[seq & 0xFFFFFFFF] = (type_, payload)
        self._ooo_bytes += len(payload)
        return False

    def _deliver(self, type_: int, payload: bytes) -> None:
        if type_ & DATA and payload:
            self._chunks.append(payload)
            self._readable_bytes += len(payload)
        if type_ & END:
            self.eof = True
            self._ooo.clear()
            self._ooo_bytes = 0
        self.ack = (self.ack + 1) & 0xFFFFFFFF

    def _drain(self) -> None:
        while not self.eof:
            entry = self._ooo.pop(self.ack, None)
            if entry is None:
                return
            self._ooo_bytes -= len(entry[1])
            self._deliver(*entry)

    def read(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of the in-order bytes (b"" when none are readable)."""
        chunks = self._chunks
        if not chunks:
            return b""
        first = chunks[0]
        if len(first) >= max_bytes:
            if len(first) == max_bytes:
                chunks.popleft()
            else:
                chunks[0] = first[max_bytes:]
                first = first[:max_bytes]
            self._readable_bytes -= len(first)
            return first
        out = [chunks.popleft()]
        size = len(first)
        while chunks and size + len(chunks[0]) <= max_bytes:
            chunk = chunks.popleft()
            out.append(chunk)
            size += len(chunk)
        if chunks and size < max_bytes:
            chunk = chunks[0]
            take = max_bytes - size
            out.append(chunk[:take])
            chunks[0] = chunk[take:]
            size += take
        self._readable_bytes -= size
        return b"".join(out)

    def sack_blocks(self) -> list[tuple[int, int]]:
        """The out-of-order runs past ``ack`` as ``(start, end)``, end exclusive, lowest first,
        at most :data:`~p2pswarm.protocol.udx.packet.MAX_SACKS` (libudx ``send_ack``)."""
        if not self._ooo:
            return []
        ack = self.ack
        offsets = sorted((s - ack) & 0xFFFFFFFF for s in self._ooo)
        blocks: list[tuple[int, int]] = []
        start = prev = offsets[0]
        for off in offsets[1:]:
            if off == prev + 1:
                prev = off
                continue
            blocks.append(((ack + start) & 0xFFFFFFFF, (ack + prev + 1) & 0xFFFFFFFF))
            if len(blocks) == MAX_SACKS:
                return blocks
            start = prev = off
        blocks.append(((ack + start) & 0xFFFFFFFF, (ack + prev + 1) & 0xFFFFFFFF))
        return blocks
