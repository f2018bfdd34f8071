"""The encrypted stream without I/O: framing, the Noise handshake, the secret stream.

Nothing here imports a socket or an event loop (a test checks): feed bytes in, get events
and bytes out. :mod:`p2pswarm.connection` drives it over TCP.
"""

from __future__ import annotations

from .framing import MAX_FRAME_SIZE, FrameDecoder, encode_frame_header
from .handshake import HELLO_VERSION, MAX_HELLO_TOPICS, Hello, Pattern, decode_hello, encode_hello
from .secret_stream import (
    Data,
    EndOfStream,
    Event,
    HandshakeComplete,
    KeepAlive,
    PeerIdentified,
    ProtocolViolation,
    SecretStream,
    StreamState,
    stream_id,
)

__all__ = (
    "HELLO_VERSION",
    "MAX_FRAME_SIZE",
    "MAX_HELLO_TOPICS",
    "Data",
    "EndOfStream",
    "Event",
    "FrameDecoder",
    "HandshakeComplete",
    "Hello",
    "KeepAlive",
    "Pattern",
    "PeerIdentified",
    "ProtocolViolation",
    "SecretStream",
    "StreamState",
    "decode_hello",
    "encode_frame_header",
    "encode_hello",
    "stream_id",
)
