"""UDX, libudx's reliable streams over UDP, as a sans-IO core: the packet codec
(:mod:`.packet`), the receive buffer (:mod:`.receiver`), sender policy (:mod:`.congestion`)
and the per-stream state machine (:mod:`.stream`). The socket lives in
:mod:`p2pswarm.transports.udx`."""

from __future__ import annotations

from .packet import Packet, decode_packet, encode_packet, is_udx, peek_stream_id
from .receiver import ReceiveBuffer, seq_diff
from .stream import UDXStreamMachine

__all__ = (
    "Packet",
    "ReceiveBuffer",
    "UDXStreamMachine",
    "decode_packet",
    "encode_packet",
    "is_udx",
    "peek_stream_id",
    "seq_diff",
)
