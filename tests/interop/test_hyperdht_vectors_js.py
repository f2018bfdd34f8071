"""HyperDHT's record encodings, namespaces and signatures are byte-for-byte the JS ones."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from p2pswarm.hyperdht import records
from p2pswarm.keys import KeyPair
from p2pswarm.protocol.compact import IPv4Address
from p2pswarm.protocol.hyperdht_messages import (
    Announce,
    LookupReply,
    MutableGetResponse,
    MutablePutRequest,
    Peer,
    decode_announce,
    decode_lookup_reply,
    decode_mutable_get_response,
    decode_mutable_put_request,
    decode_peer,
    encode_announce,
    encode_lookup_reply,
    encode_mutable_get_response,
    encode_mutable_put_request,
    encode_peer,
)

from ._js import HERE, NODE, NODE_MODULES

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        NODE is None or not (NODE_MODULES / "hyperdht").is_dir(),
        reason="node and the pinned JS fixture (npm ci in tests/interop) are needed",
    ),
]

SEED = bytes(range(32))
KEYS = KeyPair.from_seed(SEED)
RELAYS = (IPv4Address("127.0.0.1", 49737), IPv4Address("10.1.2.3", 65535))
PEER = Peer(KEYS.public_key, RELAYS)
TARGET = bytes([7]) * 32
TOKEN = bytes([9]) * 32
NODE_ID = bytes([5]) * 32
REFRESH = bytes([3]) * 32
SIG = bytes(range(64))


def _js_peer(peer: Peer | None) -> dict[str, Any] | None:
    if peer is None:
        return None
    return {
        "publicKey": peer.public_key.hex(),
        "relayAddresses": [{"host": a.host, "port": a.port} for a in peer.relay_addresses],
    }


def _js_announce(a: Announce) -> dict[str, Any]:
    return {
        "peer": _js_peer(a.peer),
        "refresh": a.refresh.hex() if a.refresh else None,
        "signature": a.signature.hex() if a.signature else None,
        "bump": a.bump,
    }


ANNOUNCES = [
    Announce(PEER, None, SIG, 0),
    Announce(PEER, REFRESH, SIG, 1_733_000_000_000),
    Announce(None, REFRESH, None, 0),
    Announce(Peer(KEYS.public_key), None, SIG, 300),
    Announce(),
]


def _cases() -> list[tuple[dict[str, Any], bytes]]:
    """(the case for JS, what Python makes of it)."""
    names = ("ANNOUNCE", "UNANNOUNCE", "MUTABLE_PUT", "PEER_HANDSHAKE", "PEER_HOLEPUNCH", "PLUGIN")
    cases: list[tuple[dict[str, Any], bytes]] = [
        ({"kind": "namespace", "name": name}, getattr(records, "NS_" + name)) for name in names
    ]
    cases += [
        ({"kind": "peer", "peer": _js_peer(peer)}, encode_peer(peer))
        for peer in (PEER, Peer(KEYS.public_key))
    ]
    cases += [
        ({"kind": "announce", "announce": _js_announce(a)}, encode_announce(a)) for a in ANNOUNCES
    ]
    for peers, bump in (([], 0), ([PEER, Peer(KEYS.public_key)], 0), ([PEER], 2**40)):
        case = {"kind": "lookupRawReply", "peers": [_js_peer(p) for p in peers], "bump": bump}
        cases.append((case, encode_lookup_reply([encode_peer(p) for p in peers], bump)))
    for seq, value in ((0, b""), (1, b"hello"), (2**33, b"x" * 300)):
        put = MutablePutRequest(KEYS.public_key, seq, value, SIG)
        case = {
            "kind": "mutablePutRequest",
            "publicKey": put.public_key.hex(),
            "seq": seq,
            "value": value.hex(),
            "signature": SIG.hex(),
        }
        cases.append((case, encode_mutable_put_request(put)))
        get = {
            "kind": "mutableGetResponse",
            "seq": seq,
            "value": value.hex(),
            "signature": SIG.hex(),
        }
        cases.append((get, encode_mutable_get_response(MutableGetResponse(seq, value, SIG))))
        sign = {"kind": "signMutable", "seq": seq, "value": value.hex(), "seed": SEED.hex()}
        cases.append((sign, records.sign_mutable(KEYS, seq, value)))
    for a in ANNOUNCES[:2]:
        assert a.peer is not None
        base = {
            "target": TARGET.hex(),
            "token": TOKEN.hex(),
            "id": NODE_ID.hex(),
            "seed": SEED.hex(),
        }
        ours = records.sign_announce(KEYS, TARGET, NODE_ID, TOKEN, a.peer, a.refresh)
        cases.append(({"kind": "signAnnounce", **base, "announce": _js_announce(a)}, ours))
    unann = Announce(Peer(KEYS.public_key), None, None, 0)
    ours = records.sign_unannounce(KEYS, TARGET, NODE_ID, TOKEN, Peer(KEYS.public_key))
    base = {"target": TARGET.hex(), "token": TOKEN.hex(), "id": NODE_ID.hex(), "seed": SEED.hex()}
    cases.append(({"kind": "signUnannounce", **base, "announce": _js_announce(unann)}, ours))
    cases.append(({"kind": "hash", "data": KEYS.public_key.hex()}, records.hash32(KEYS.public_key)))
    return cases


@pytest.fixture(scope="module")
def js_bytes() -> list[tuple[dict[str, Any], bytes, bytes]]:
    assert NODE is not None
    cases = _cases()
    done = subprocess.run(
        [NODE, str(HERE / "hyperdht_vectors.js")],
        input="".join(json.dumps(case) + "\n" for case, _ in cases),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=HERE,
    )
    lines = done.stdout.split()
    assert len(lines) == len(cases)
    return [(case, ours, bytes.fromhex(js)) for (case, ours), js in zip(cases, lines, strict=True)]


def test_python_writes_and_signs_the_js_bytes(
    js_bytes: list[tuple[dict[str, Any], bytes, bytes]],
) -> None:
    for case, ours, js in js_bytes:
        assert ours.hex() == js.hex(), case


def test_python_reads_the_js_bytes(js_bytes: list[tuple[dict[str, Any], bytes, bytes]]) -> None:
    by_kind: dict[str, list[bytes]] = {}
    for case, _, js in js_bytes:
        by_kind.setdefault(case["kind"], []).append(js)
    assert [decode_peer(b) for b in by_kind["peer"]] == [PEER, Peer(KEYS.public_key)]
    assert [decode_announce(b) for b in by_kind["announce"]] == ANNOUNCES
    assert [decode_lookup_reply(b) for b in by_kind["lookupRawReply"]] == [
        LookupReply(()),
        LookupReply((PEER, Peer(KEYS.public_key))),
        LookupReply((PEER,), 2**40),
    ]
    puts = [decode_mutable_put_request(b) for b in by_kind["mutablePutRequest"]]
    assert [(p.seq, p.value) for p in puts] == [(0, b""), (1, b"hello"), (2**33, b"x" * 300)]
    gets = [decode_mutable_get_response(b) for b in by_kind["mutableGetResponse"]]
    assert [(g.seq, g.value, g.signature) for g in gets] == [(p.seq, p.value, SIG) for p in puts]
    for (seq, value), sig in zip(
        [(p.seq, p.value) for p in puts], by_kind["signMutable"], strict=True
    ):
        assert records.verify_mutable(KEYS.public_key, seq, value, sig)
    assert records.verify_announce(
        by_kind["signAnnounce"][1], TARGET, NODE_ID, TOKEN, PEER, REFRESH
    )
    assert records.verify_unannounce(
        by_kind["signUnannounce"][0], TARGET, NODE_ID, TOKEN, Peer(KEYS.public_key)
    )
