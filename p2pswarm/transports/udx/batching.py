"""Many UDP datagrams per system call: Linux UDP GSO on send, UDP GRO on receive.

Python pays a few microseconds per ``sendto``/``recvfrom`` (on loopback the receiver's
kernel work runs in the sender's call too), and a bulk UDX flow is a datagram per 1.4 KiB.
With ``UDP_SEGMENT`` one ``sendmsg`` carries up to 64 datagrams of one size (the last may be
shorter) and the kernel cuts them apart, in the NIC where it can; with ``UDP_GRO`` the
kernel hands a burst of one flow's datagrams to one ``recvmsg`` with their size, and we cut.
This is what libudx cannot do from a ``uv_udp_t`` and what QUIC stacks do (RFC 9000
implementations on Linux, and the kernel's own selftests) for the same reason.

The grouping is pure (:func:`gso_runs`, :func:`split_gro`); :func:`enable_gro` and
:func:`send_run` are the thin system-call edge. Kernels or devices without the options
(not Linux, Linux before 4.18 / 5.0, a device without checksum offload) refuse them with an
error, and the socket falls back to one datagram per call.
"""

from __future__ import annotations

import socket as _socket
import struct
import sys
from collections.abc import Iterator, Sequence

__all__ = ("MAX_SEGMENTS", "enable_gro", "gso_runs", "send_run", "split_gro")

#: ``<linux/udp.h>``; Python's socket module does not name them.
UDP_SEGMENT = 103
UDP_GRO = 104
#: The kernel's ``UDP_MAX_SEGMENTS``.
MAX_SEGMENTS = 64
#: One UDP datagram's payload at most (IPv4): the whole run travels as one.
_MAX_RUN_BYTES = 65_507
_GRO_CMSG_SPACE = _socket.CMSG_SPACE(4) if hasattr(_socket, "CMSG_SPACE") else 0
_ON_LINUX = sys.platform.startswith("linux")


def gso_runs(datagrams: Sequence[bytes]) -> Iterator[Sequence[bytes]]:
    """Consecutive datagrams that one GSO send can carry, in order: all of the first's
    size except possibly a shorter last one, at most 64 and 65,507 bytes together."""
    start = 0
    count = len(datagrams)
    while start < count:
        size = len(datagrams[start])
        end = start + 1
        total = size
        while (
            end < count
            and end - start < MAX_SEGMENTS
            and total + len(datagrams[end]) <= _MAX_RUN_BYTES
        ):
            length = len(datagrams[end])
            if length > size:
                break
            end += 1
            total += length
            if length < size:
                break  # a shorter datagram ends the run
        yield datagrams[start:end]
        start = end


def split_gro(data: bytes, segment_size: int) -> list[bytes]:
    """The datagrams of a GRO receive: ``segment_size`` bytes each, the last shorter."""
    if segment_size <= 0 or segment_size >= len(data):
        return [data]
    return [data[i : i + segment_size] for i in range(0, len(data), segment_size)]


def gso_supported() -> bool:
    return _ON_LINUX


def enable_gro(raw: _socket.socket) -> bool:
    """Ask the kernel for GRO receives on ``raw``; False where it has no such option."""
    if not _ON_LINUX or not _GRO_CMSG_SPACE:
        return False
    try:
        raw.setsockopt(_socket.SOL_UDP, UDP_GRO, 1)
    except OSError:
        return False
    return True


def receive_gro(raw: _socket.socket, max_size: int) -> tuple[list[bytes], tuple[str, int]]:
    """One ``recvmsg`` on a GRO socket: the datagrams it holds and their source."""
    data, ancillary, _flags, source = raw.recvmsg(max_size, _GRO_CMSG_SPACE)
    segment = 0
    for level, kind, value in ancillary:
        if level == _socket.SOL_UDP and kind == UDP_GRO and len(value) >= 4:
            segment = int.from_bytes(value[:4], sys.byteorder)
    address = (str(source[0]), int(source[1]))
    return split_gro(data, segment) if segment else [data], address


def send_run(raw: _socket.socket, run: Sequence[bytes], address: tuple[str, int]) -> None:
    """Send ``run`` (from :func:`gso_runs`) in one call; a run of one is a plain datagram."""
    if len(run) == 1:
        raw.sendto(run[0], address)
        return
    segment = struct.pack("=H", len(run[0]))
    raw.sendmsg([b"".join(run)], [(_socket.SOL_UDP, UDP_SEGMENT, segment)], 0, address)
