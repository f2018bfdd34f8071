"""compact-encoding: round trips, the exact bytes of each form, and hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from p2pswarm.errors import CompactDecodeError, RemoteProtocolError
from p2pswarm.protocol.compact import (
    MAX_SAFE_INTEGER,
    IPv4Address,
    IPv6Address,
    Reader,
    Writer,
    decode_uint,
    encode_uint,
    uint_size,
)

uints = st.integers(min_value=0, max_value=MAX_SAFE_INTEGER)
ipv4_hosts = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ports = st.integers(0, 0xFFFF)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"),
        (0xFC, "fc"),
        (0xFD, "fdfd00"),
        (0xFFFF, "fdffff"),
        (0x10000, "fe00000100"),
        (0xFFFFFFFF, "feffffffff"),
        (0x100000000, "ff0000000001000000"),
        (MAX_SAFE_INTEGER, "ffffffffffffff1f00"),
    ],
)
def test_uint_boundaries(value: int, encoded: str) -> None:
    assert encode_uint(value).hex() == encoded
    assert uint_size(value) == len(encoded) // 2
    assert decode_uint(bytes.fromhex(encoded)) == value


@given(uints)
def test_uint_round_trip(value: int) -> None:
    assert decode_uint(encode_uint(value)) == value


@given(st.integers(min_value=-(2**52), max_value=2**52 - 1))
def test_int_round_trip(value: int) -> None:
    reader = Reader(Writer().zigzag_int(value).getvalue())
    assert reader.zigzag_int() == value
    reader.finish()


@given(
    st.lists(ipv4_hosts.flatmap(lambda h: ports.map(lambda p: (h, p))), max_size=20),
    st.binary(max_size=300),
    st.text(max_size=50),
    st.binary(min_size=32, max_size=32),
)
def test_message_round_trip(
    addresses: list[tuple[str, int]], blob: bytes, text: str, key: bytes
) -> None:
    data = (
        Writer().uint(7).ipv4_addresses(addresses).buffer(blob).string(text).fixed(key, 32)
    ).getvalue()
    reader = Reader(data)
    assert reader.uint() == 7
    assert reader.ipv4_addresses(20) == [IPv4Address(*a) for a in addresses]
    assert reader.buffer(300) == blob
    assert reader.string(200) == text
    assert reader.fixed(32) == key
    reader.finish()


def test_ipv6_address() -> None:
    data = Writer().ipv6_address(("::1", 49737)).getvalue()
    assert data.hex() == "00000000000000000000000000000001" + "49c2"
    assert Reader(data).ipv6_address() == IPv6Address("::1", 49737)


def test_optional_buffer_and_bool() -> None:
    reader = Reader(Writer().buffer(None).buffer(b"x").boolean(True).boolean(False).getvalue())
    assert reader.optional_buffer(10) is None
    assert reader.optional_buffer(10) == b"x"
    assert reader.boolean() is True
    assert reader.boolean() is False


@pytest.mark.parametrize(
    "data",
    [
        "",  # nothing at all
        "fd00",  # a u16 marker with one byte
        "fdfc00",  # 252 in 3 bytes: not the shortest form
        "fe00ff0000",  # 65280 in 5 bytes
        "ffffffffff00000000",  # 2**32 - 1 in 9 bytes
    ],
)
def test_bad_uints_are_refused(data: str) -> None:
    with pytest.raises(CompactDecodeError):
        decode_uint(bytes.fromhex(data))


def test_uint64_beyond_the_safe_range_is_refused() -> None:
    with pytest.raises(CompactDecodeError, match="safe integer"):
        decode_uint(bytes.fromhex("ff" + "ff" * 8))


def test_bounds_are_enforced() -> None:
    with pytest.raises(CompactDecodeError, match="above its maximum"):
        Reader(Writer().buffer(b"abc").getvalue()).buffer(2)
    with pytest.raises(CompactDecodeError, match="truncated"):
        Reader(bytes.fromhex("05aabb")).buffer(100)
    with pytest.raises(CompactDecodeError, match="above the maximum"):
        Reader(Writer().uint(1000).getvalue()).ipv4_addresses(20)
    with pytest.raises(CompactDecodeError, match="truncated"):
        Reader(bytes.fromhex("03") + b"\x00" * 6).ipv4_addresses(20)
    with pytest.raises(CompactDecodeError, match="above its maximum"):
        Reader(Writer().uint(10**6).getvalue()).array(Reader.uint, 100)
    with pytest.raises(CompactDecodeError, match="UTF-8"):
        Reader(bytes.fromhex("02c328")).string(10)
    with pytest.raises(CompactDecodeError, match="bool"):
        Reader(b"\x02").boolean()
    with pytest.raises(CompactDecodeError, match="trailing"):
        Reader(b"\x01\x02").finish()
    with pytest.raises(CompactDecodeError, match="above its maximum"):
        Reader(b"\x09").bounded_uint(8, "flags")


def test_decode_errors_are_remote_protocol_errors() -> None:
    assert issubclass(CompactDecodeError, RemoteProtocolError)


def test_writer_refuses_values_js_would_refuse() -> None:
    with pytest.raises(ValueError):
        Writer().uint(-1)
    with pytest.raises(ValueError):
        Writer().uint(MAX_SAFE_INTEGER + 1)
    with pytest.raises(ValueError):
        Writer().fixed(b"short", 32)


@given(st.binary(max_size=64))
def test_the_reader_raises_only_its_typed_error(data: bytes) -> None:
    """Whatever the bytes, each read returns a value or raises CompactDecodeError."""
    for read in (
        lambda r: r.uint(),
        lambda r: r.buffer(16),
        lambda r: r.string(16),
        lambda r: r.ipv4_addresses(4),
        lambda r: r.ipv6_address(),
        lambda r: r.array(Reader.zigzag_int, 8),
        lambda r: r.boolean(),
    ):
        reader = Reader(memoryview(data))
        try:
            read(reader)
        except CompactDecodeError:
            continue
        assert 0 <= reader.offset <= len(data)
