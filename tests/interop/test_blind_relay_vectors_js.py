"""Our blind-relay ``pair`` / ``unpair`` codec against the real blind-relay 1.6.1 messages:
JS encodes, we decode (and the reverse), byte for byte, over random values."""

from __future__ import annotations

import json
import os
import random
import subprocess

import pytest

from p2pswarm.protocol.blind_relay import (
    Pair,
    Unpair,
    decode_pair,
    decode_unpair,
    encode_pair,
    encode_unpair,
)

from ._js import HERE, NODE, NODE_MODULES

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        NODE is None or not (NODE_MODULES / "blind-relay").is_dir(),
        reason="node and the pinned JS fixture (npm ci in tests/interop) are needed",
    ),
]


def run_js(requests: list[dict[str, object]]) -> list[dict[str, object]]:
    assert NODE is not None
    lines = "".join(json.dumps(r) + "\n" for r in requests)
    done = subprocess.run(
        [NODE, str(HERE / "blind_relay_vectors.js")],
        input=lines,
        capture_output=True,
        text=True,
        cwd=HERE,
        timeout=30,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def sample_pairs() -> list[Pair]:
    rng = random.Random(7)
    ids = [0, 1, 0xFC, 0xFD, 0xFFFF, 0x10000, 0xFFFFFFFF]
    ids += [rng.randrange(1 << 32) for _ in range(20)]
    return [
        Pair(bool(i & 1), os.urandom(32), stream_id, rng.choice([0, 0, 1, 300, 1 << 40]))
        for i, stream_id in enumerate(ids)
    ]


def test_js_encodes_pair_as_we_do() -> None:
    pairs = sample_pairs()
    answers = run_js(
        [
            {
                "kind": "pair",
                "isInitiator": p.is_initiator,
                "token": p.token.hex(),
                "id": p.id,
                "seq": p.seq,
            }
            for p in pairs
        ]
    )
    for pair, answer in zip(pairs, answers, strict=True):
        assert answer["ok"], answer
        assert answer["hex"] == encode_pair(pair).hex()
        assert decode_pair(bytes.fromhex(str(answer["hex"]))) == pair


def test_js_decodes_our_pair_and_unpair() -> None:
    pairs = sample_pairs()
    unpairs = [Unpair(os.urandom(32)) for _ in range(5)]
    answers = run_js(
        [{"kind": "pair", "hex": encode_pair(p).hex()} for p in pairs]
        + [{"kind": "unpair", "hex": encode_unpair(u).hex()} for u in unpairs]
    )
    for pair, answer in zip(pairs, answers, strict=False):
        assert answer == {
            "ok": True,
            "value": {
                "token": pair.token.hex(),
                "isInitiator": pair.is_initiator,
                "id": pair.id,
                "seq": pair.seq,
            },
        }
    for unpair, answer in zip(unpairs, answers[len(pairs) :], strict=True):
        assert answer == {"ok": True, "value": {"token": unpair.token.hex()}}
        assert decode_unpair(encode_unpair(unpair)) == unpair


def test_js_refuses_a_short_token_as_we_do() -> None:
    short = "00" + "11" * 31
    (answer,) = run_js([{"kind": "unpair", "hex": short}])
    assert answer["ok"] is False
