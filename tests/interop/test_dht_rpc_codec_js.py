"""Our dht-rpc codec writes the bytes dht-rpc's own ``lib/io.js`` writes, and each side reads
the other's: requests, replies (with ids, tokens, closer nodes, errors, values), node ids and
tokens (secrets and rotation)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from p2pswarm.protocol.compact import IPv4Address
from p2pswarm.protocol.dht_rpc import (
    Request,
    Response,
    TokenSecrets,
    decode_request,
    decode_response,
    node_id,
)

from ._js import HERE, NODE, NODE_MODULES

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        NODE is None or not (NODE_MODULES / "dht-rpc").is_dir(),
        reason="node and the pinned JS fixture (npm ci in tests/interop) are needed",
    ),
]

ID = node_id("10.1.2.3", 4000)
TARGET = bytes(range(32))
TOKEN = bytes(range(100, 132))
SECRETS = ("11" * 31 + "ff", "22" * 32)


def run_js(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(HERE / "dht_rpc_vectors.js")],
        input="".join(json.dumps(m) + "\n" for m in messages),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=HERE,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


REQUESTS = [
    Request(0xB44C, IPv4Address("127.0.0.1", 49737), 0, internal=True),
    Request(7, IPv4Address("10.0.0.9", 1), 2, internal=True, target=TARGET),
    Request(65535, IPv4Address("1.2.3.4", 65535), 3, internal=True, value=b"\x7f\0\0\1\1\0"),
    Request(1, IPv4Address("8.8.4.4", 53), 300, token=TOKEN, target=TARGET, value=b"x" * 300),
    Request(2, IPv4Address("127.0.0.1", 9), 9, id=ID, value=b""),
]


def _request_message(r: Request) -> dict[str, Any]:
    return {
        "op": "request",
        "tid": r.tid,
        "to": list(r.to),
        "internal": r.internal,
        "command": r.command,
        "token": r.token.hex() if r.token else None,
        "target": r.target.hex() if r.target else None,
        "value": r.value.hex() if r.value is not None else None,
        "id": r.id.hex() if r.id else None,
    }


def test_requests_match_io_js() -> None:
    js = run_js([_request_message(r) for r in REQUESTS])
    for request, out in zip(REQUESTS, js, strict=True):
        assert request.encode().hex() == out["hex"], request
        assert decode_request(bytes.fromhex(out["hex"])) == request


def test_js_decodes_our_requests() -> None:
    source = ("10.1.2.3", 4000)
    cases = [r for r in REQUESTS if r.token is None]
    js = run_js(
        [{"op": "decodeRequest", "hex": r.encode().hex(), "from": list(source)} for r in cases]
    )
    for request, out in zip(cases, js, strict=True):
        assert out["tid"] == request.tid
        assert tuple(out["to"]) == request.to
        assert out["internal"] == request.internal
        assert out["command"] == request.command
        assert out["target"] == (request.target.hex() if request.target else None)
        assert out["value"] == (request.value.hex() if request.value is not None else None)
        # The id is accepted only because it is H(source).
        assert out["id"] == (ID.hex() if request.id else None)


def test_js_refuses_an_id_that_is_not_the_senders() -> None:
    request = Request(5, IPv4Address("127.0.0.1", 1), 0, internal=True, id=ID)
    (out,) = run_js(
        [{"op": "decodeRequest", "hex": request.encode().hex(), "from": ["10.9.9.9", 4000]}]
    )
    assert out["id"] is None


def test_replies_match_io_js() -> None:
    """io.js answers a request of ours; we decode its reply and re-encode it identically,
    including its token (H(host) under its secret 1) and its closest nodes."""
    closer = [["10.0.0.1", 1], ["192.168.1.254", 65535], ["1.1.1.1", 443]]
    find = Request(77, IPv4Address("127.0.0.1", 5), 2, internal=True, target=TARGET)
    cases = [
        {"value": None, "token": False, "id": None},
        {"value": "abcd", "token": True, "id": ID.hex()},
        {"error": 1, "token": False, "id": None},
        {"error": 2, "token": True, "id": ID.hex(), "closerNodes": False},
    ]
    js = run_js(
        [
            {
                "op": "reply",
                "request": find.encode().hex(),
                "from": ["10.7.7.7", 3000],
                "closer": closer,
                "secrets": SECRETS,
                **case,
            }
            for case in cases
        ]
    )
    secrets = TokenSecrets(bytes.fromhex(SECRETS[0]), bytes.fromhex(SECRETS[1]))
    for case, out in zip(cases, js, strict=True):
        response = decode_response(bytes.fromhex(out["hex"]))
        assert response.tid == 77
        assert response.to == ("10.7.7.7", 3000)
        assert response.error == case.get("error", 0)
        assert response.id == (ID if case["id"] else None)
        expected_token = secrets.token("10.7.7.7", 1) if case["token"] else None
        assert response.token == expected_token
        if case.get("closerNodes", True):
            assert [list(a) for a in response.closer_nodes] == closer
        assert response.encode().hex() == out["hex"]


def test_js_decodes_our_responses() -> None:
    source = ("10.1.2.3", 4000)
    responses = [
        Response(9, IPv4Address("127.0.0.1", 40643)),
        Response(
            10,
            IPv4Address("5.6.7.8", 1),
            id=ID,
            token=TOKEN,
            closer_nodes=(IPv4Address("10.0.0.1", 2), IPv4Address("10.0.0.3", 4)),
            error=16,
            value=b"hello",
        ),
        Response(11, IPv4Address("5.6.7.8", 1), value=b""),
    ]
    js = run_js(
        [
            {"op": "decodeResponse", "hex": r.encode().hex(), "from": list(source), "tid": r.tid}
            for r in responses
        ]
    )
    for response, out in zip(responses, js, strict=True):
        assert out["tid"] == response.tid
        assert tuple(out["to"]) == response.to
        assert out["id"] == (response.id.hex() if response.id else None)
        assert out["token"] == (response.token.hex() if response.token else None)
        expected_closer = [list(a) for a in response.closer_nodes] or None
        assert out["closerNodes"] == expected_closer
        assert out["error"] == response.error
        assert out["value"] == (response.value.hex() if response.value is not None else None)


def test_ids_and_tokens_match() -> None:
    hosts = [("127.0.0.1", 49737), ("255.255.255.255", 0), ("88.99.3.86", 49737)]
    js = run_js([{"op": "id", "host": h, "port": p} for h, p in hosts])
    assert [node_id(h, p).hex() for h, p in hosts] == [o["hex"] for o in js]

    (out,) = run_js([{"op": "token", "host": "1.2.3.4", "secrets": SECRETS}])
    secrets = TokenSecrets(bytes.fromhex(SECRETS[0]), bytes.fromhex(SECRETS[1]))
    assert secrets.token("1.2.3.4", 1).hex() == out["t1"]
    assert secrets.token("1.2.3.4", 0).hex() == out["t0"]
    secrets.rotate()  # what ten drain ticks do in io.js
    assert secrets._secrets == [bytes.fromhex(h) for h in out["rotated"]]
    # A token of the previous secret 1 is still valid after one rotation.
    assert secrets.valid("1.2.3.4", bytes.fromhex(out["t1"]))
    assert not secrets.valid("1.2.3.5", bytes.fromhex(out["t1"]))


def test_js_answers_a_forged_token_with_invalid_token() -> None:
    request = Request(3, IPv4Address("127.0.0.1", 1), 7, token=bytes(32), target=TARGET)
    (out,) = run_js(
        [
            {
                "op": "decodeRequest",
                "hex": request.encode().hex(),
                "from": ["10.0.0.1", 5],
                "secrets": SECRETS,
            }
        ]
    )
    assert decode_response(bytes.fromhex(out["replied"])).error == 2
