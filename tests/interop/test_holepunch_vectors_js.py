"""PEER_HOLEPUNCH values and sealed round payloads are byte-for-byte JS hyperdht's: JS opens
what we seal and we open what JS seals, under the same holepunch secret."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from p2pswarm.hyperdht.records import NS_PEER_HOLEPUNCH
from p2pswarm.protocol.compact import IPv4Address
from p2pswarm.protocol.hyperdht_holepunch import (
    Holepunch,
    HolepunchPayload,
    SecurePayload,
    decode_holepunch,
    encode_holepunch,
    encode_holepunch_payload,
    holepunch_secret,
)

from ._js import HERE, NODE, NODE_MODULES

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        NODE is None or not (NODE_MODULES / "hyperdht").is_dir(),
        reason="node and the pinned JS fixture (npm ci in tests/interop) are needed",
    ),
]

SECRET = bytes(range(32))
HASH = bytes(range(64))
PAYLOADS = [
    HolepunchPayload(),
    HolepunchPayload(0, 2, 3, False, True, (IPv4Address("10.200.10.1", 40000),)),
    HolepunchPayload(
        1,
        3,
        7,
        True,
        True,
        (IPv4Address("1.2.3.4", 0), IPv4Address("5.6.7.8", 65535)),
        IPv4Address("9.9.9.9", 9),
        bytes([1]) * 32,
        bytes([2]) * 32,
    ),
    # JS reserves one byte each for flags, error, firewall and round: keep them < 253.
    HolepunchPayload(3, 0, 252, addresses=()),
]
MESSAGES = [
    Holepunch(0, 0, b"\x01\x02", IPv4Address("10.0.0.1", 1)),
    Holepunch(4, 63, bytes(100)),
]


def _js(p: HolepunchPayload) -> dict[str, Any]:
    return {
        "error": p.error,
        "firewall": p.firewall,
        "round": p.round,
        "connected": p.connected,
        "punching": p.punching,
        "addresses": [{"host": a.host, "port": a.port} for a in p.addresses]
        if p.addresses is not None
        else None,
        "remoteAddress": {"host": p.remote_address.host, "port": p.remote_address.port}
        if p.remote_address
        else None,
        "token": p.token.hex() if p.token else None,
        "remoteToken": p.remote_token.hex() if p.remote_token else None,
    }


def _run(request: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "NODE_PATH": str(NODE_MODULES)}
    proc = subprocess.run(
        [str(NODE), str(HERE / "holepunch_vectors.js")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_holepunch_values_and_sealed_payloads_match_js() -> None:
    ours = SecurePayload(SECRET)
    sealed = [ours.encrypt(p).hex() for p in PAYLOADS]
    messages = [
        {
            "mode": m.mode,
            "id": m.id,
            "payload": m.payload.hex(),
            "peerAddress": {"host": m.peer_address.host, "port": m.peer_address.port}
            if m.peer_address
            else None,
        }
        for m in MESSAGES
    ]
    out = _run(
        {
            "secret": SECRET.hex(),
            "sealed": sealed,
            "payloads": [_js(p) for p in PAYLOADS],
            "messages": messages,
            "hash": HASH.hex(),
        }
    )
    assert out["opened"] == [_js(p) for p in PAYLOADS]
    assert out["payloads"] == [encode_holepunch_payload(p).hex() for p in PAYLOADS]
    assert [ours.decrypt(bytes.fromhex(h)) for h in out["sealed"]] == PAYLOADS
    assert out["messages"] == [encode_holepunch(m).hex() for m in MESSAGES]
    assert [decode_holepunch(bytes.fromhex(h)) for h in out["messages"]] == MESSAGES
    assert out["secret"] == holepunch_secret(HASH, NS_PEER_HOLEPUNCH).hex()
