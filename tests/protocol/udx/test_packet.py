"""The UDX packet codec: libudx's header bytes, strict decoding, Hypothesis over both."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, strategies as st

from p2pswarm.errors import UDXPacketError
from p2pswarm.protocol.udx import Packet, decode_packet, encode_packet, is_udx, peek_stream_id
from p2pswarm.protocol.udx.packet import (
    DATA,
    DESTROY,
    END,
    HEARTBEAT,
    KNOWN_TYPES,
    MAX_SACKS,
    MESSAGE,
    SACK,
    encode_header,
)


def test_header_layout_matches_libudx() -> None:
    header = encode_header(DATA | END, 0x01020304, 4 * 1024 * 1024, 7, 9)
    assert header == bytes([0xFF, 1, 3, 0]) + struct.pack("<IIII", 0x01020304, 1 << 22, 7, 9)
    assert is_udx(header) and peek_stream_id(header) == 0x01020304


def test_type_bits_match_udx_h() -> None:
    assert (DATA, END, SACK, MESSAGE, DESTROY, HEARTBEAT) == (1, 2, 4, 8, 16, 32)


def test_sack_list_follows_the_header_with_exclusive_ends() -> None:
    datagram = encode_packet(Packet(0, 5, 100, 3, 1, sacks=((2, 4), (6, 7))))
    assert datagram[2] == SACK and datagram[3] == 0
    assert datagram[20:] == struct.pack("<IIII", 2, 4, 6, 7)
    assert decode_packet(datagram).sacks == ((2, 4), (6, 7))


def test_mtu_probe_padding_is_skipped_through_the_data_offset() -> None:
    datagram = encode_packet(Packet(DATA, 5, 0, 0, 0, b"payload", padding=32))
    assert datagram[3] == 32 and len(datagram) == 20 + 32 + 7
    decoded = decode_packet(datagram)
    assert decoded.payload == b"payload" and decoded.padding == 32


@pytest.mark.parametrize(
    ("datagram", "why"),
    [
        (b"", "20-byte header"),
        (bytes([0xFF, 1]) + bytes(17), "20-byte header"),
        (bytes([0xFE, 1]) + bytes(18), "not UDX"),
        (bytes([0xFF, 2]) + bytes(18), "not UDX"),
        (bytes([0xFF, 1, 0x40]) + bytes(17), "unknown UDX type"),
        (bytes([0xFF, 1, DATA, 5]) + bytes(16) + b"abc", "data offset"),
        (bytes([0xFF, 1, SACK, 0]) + bytes(16) + bytes(12), "not whole blocks"),
        (bytes([0xFF, 1, SACK, 0]) + bytes(16) + struct.pack("<II", 5, 5), "empty or backwards"),
        (bytes([0xFF, 1, SACK, 0]) + bytes(16) + struct.pack("<II", 9, 5), "empty or backwards"),
        (bytes([0xFF, 1, SACK, 0]) + bytes(16) + bytes(8 * (MAX_SACKS + 1)), "more than"),
    ],
)
def test_malformed_packets_raise_a_typed_error(datagram: bytes, why: str) -> None:
    with pytest.raises(UDXPacketError, match=why):
        decode_packet(datagram)


packets = st.builds(
    Packet,
    type=st.integers(0, KNOWN_TYPES).map(lambda t: t & ~SACK),
    stream_id=st.integers(0, 2**32 - 1),
    rwnd=st.integers(0, 2**32 - 1),
    seq=st.integers(0, 2**32 - 1),
    ack=st.integers(0, 2**32 - 1),
    payload=st.binary(max_size=1500),
    padding=st.integers(0, 255),
)


@given(packets)
def test_encode_then_decode_is_identity(packet: Packet) -> None:
    assert decode_packet(encode_packet(packet)) == packet


@given(
    st.lists(
        st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 2**20)).map(
            lambda t: (t[0], (t[0] + t[1]) & 0xFFFFFFFF)
        ),
        min_size=1,
        max_size=MAX_SACKS,
    )
)
def test_sack_lists_round_trip(blocks: list[tuple[int, int]]) -> None:
    packet = Packet(SACK, 1, 2, 3, 4, sacks=tuple(blocks))
    assert decode_packet(encode_packet(packet)).sacks == tuple(blocks)


@given(st.binary(max_size=600))
def test_decoder_returns_a_packet_or_raises_the_typed_error(datagram: bytes) -> None:
    try:
        packet = decode_packet(datagram)
    except UDXPacketError:
        return
    assert is_udx(datagram) and packet.type & ~KNOWN_TYPES == 0


@given(st.binary(min_size=20, max_size=600).map(lambda b: b"\xff\x01" + b[2:]))
def test_decoder_on_udx_shaped_garbage(datagram: bytes) -> None:
    with contextlib.suppress(UDXPacketError):
        packet = decode_packet(datagram)
        assert packet.type & ~KNOWN_TYPES == 0
