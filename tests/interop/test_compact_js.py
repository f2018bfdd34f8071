"""Our compact-encoding writes the same bytes as the real JS packages, and reads theirs."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from p2pswarm.protocol.compact import MAX_SAFE_INTEGER, IPv4Address, IPv6Address, Reader, Writer

from ._js import HERE, NODE, NODE_MODULES

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        NODE is None or not (NODE_MODULES / "compact-encoding").is_dir(),
        reason="node and the pinned JS fixture (npm ci in tests/interop) are needed",
    ),
]

CASES: list[tuple[str, Any]] = [
    *(("uint", n) for n in (0, 1, 0xFC, 0xFD, 0xFFFF, 0x10000, 2**32 - 1, 2**32, MAX_SAFE_INTEGER)),
    *(("int", n) for n in (0, -1, 1, -200, 300, -(2**40), 2**40)),
    ("uint8", 200),
    ("uint16", 0xBEEF),
    ("uint24", 0xABCDEF),
    ("uint32", 0xDEADBEEF),
    ("uint64", 2**50 + 3),
    ("bool", True),
    ("bool", False),
    ("fixed32", "11" * 32),
    ("fixed64", "22" * 64),
    ("buffer", ""),
    ("buffer", "ab" * 300),
    ("string", ""),
    ("string", "hyperswarm/dht ✓ ünïcode"),
    ("ipv4Address", {"host": "127.0.0.1", "port": 49737}),
    ("ipv4Address", {"host": "255.1.0.254", "port": 0}),
    ("ipv6Address", {"host": "2001:db8::ff00:42:8329", "port": 443}),
    ("ipv4Array", []),
    ("ipv4Array", [{"host": "10.0.0.1", "port": 1}, {"host": "1.2.3.4", "port": 65535}]),
    ("uintArray", [0, 253, 70000]),
]


def _ours(enc: str, value: Any) -> bytes:
    w = Writer()
    if enc == "ipv4Address":
        w.ipv4_address((value["host"], value["port"]))
    elif enc == "ipv6Address":
        w.ipv6_address((value["host"], value["port"]))
    elif enc == "ipv4Array":
        w.ipv4_addresses((a["host"], a["port"]) for a in value)
    elif enc == "uintArray":
        w.array(value, Writer.uint)
    elif enc in ("fixed32", "fixed64"):
        raw = bytes.fromhex(value)
        w.fixed(raw, len(raw))
    elif enc == "buffer":
        w.buffer(bytes.fromhex(value))
    else:
        getattr(w, {"int": "zigzag_int", "bool": "boolean"}.get(enc, enc))(value)
    return w.getvalue()


def _decode(enc: str, data: bytes) -> Any:
    r = Reader(data)
    value: Any
    if enc == "ipv4Address":
        value = r.ipv4_address()
    elif enc == "ipv6Address":
        value = r.ipv6_address()
    elif enc == "ipv4Array":
        value = r.ipv4_addresses(10)
    elif enc == "uintArray":
        value = r.array(Reader.uint, 10)
    elif enc in ("fixed32", "fixed64"):
        value = r.fixed(int(enc[5:])).hex()
    elif enc == "buffer":
        value = r.buffer(1000).hex()
    elif enc == "string":
        value = r.string(1000)
    else:
        value = getattr(r, {"int": "zigzag_int", "bool": "boolean"}.get(enc, enc))()
    r.finish()
    return value


def _expected(enc: str, value: Any) -> Any:
    if enc == "ipv4Address":
        return IPv4Address(value["host"], value["port"])
    if enc == "ipv6Address":
        return IPv6Address(value["host"], value["port"])
    if enc == "ipv4Array":
        return [IPv4Address(a["host"], a["port"]) for a in value]
    return value


def test_bytes_match_the_js_packages() -> None:
    assert NODE is not None
    lines = "".join(json.dumps({"enc": e, "value": v}) + "\n" for e, v in CASES)
    done = subprocess.run(
        [NODE, str(HERE / "compact_vectors.js")],
        input=lines,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=HERE,
    )
    js = done.stdout.split()
    assert len(js) == len(CASES)
    for (enc, value), js_hex in zip(CASES, js, strict=True):
        assert _ours(enc, value).hex() == js_hex, (enc, value)
        assert _decode(enc, bytes.fromhex(js_hex)) == _expected(enc, value), (enc, value)
