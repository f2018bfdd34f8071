"""Our ports of nat-sampler and kademlia-routing-table decide as the JS packages do, input by
input (random and adversarial sequences, generated here, replayed in JS)."""

from __future__ import annotations

import json
import os
import random
import subprocess
from typing import Any

import pytest

from p2pswarm.hyperdht.nat import NatSampler
from p2pswarm.hyperdht.routing import RoutingNode, RoutingTable

from ._js import HERE, NODE, NODE_MODULES

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        NODE is None or not (NODE_MODULES / "nat-sampler").is_dir(),
        reason="node and the pinned JS fixture (npm ci in tests/interop) are needed",
    ),
]


def run_js(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(HERE / "dht_rpc_pure_vectors.js")],
        input="".join(json.dumps(m) + "\n" for m in messages),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=HERE,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def nat_sequences() -> list[list[tuple[str, int]]]:
    rng = random.Random(7)
    hosts = ["1.1.1.1", "2.2.2.2", "3.3.3.3"]
    sequences = [
        [("1.1.1.1", 5)] * 40,  # consistent
        [("1.1.1.1", 1000 + i) for i in range(40)],  # randomized ports
        [("1.1.1.1", 5)] * 3 + [("6.6.6.6", 1)] + [("1.1.1.1", 5)] * 30,  # one liar
    ]
    sequences += [
        [(rng.choice(hosts), rng.choice([5, 6, 7])) for _ in range(rng.randint(1, 60))]
        for _ in range(20)
    ]
    return sequences


def test_nat_sampler_matches_js() -> None:
    sequences = nat_sequences()
    js = run_js([{"op": "nat", "samples": seq} for seq in sequences])
    for seq, out in zip(sequences, js, strict=True):
        sampler = NatSampler()
        ours = []
        for host, port in seq:
            sampler.add(host, port)
            ours.append([sampler.host, sampler.port])
        assert ours == out["after"], seq


def test_routing_table_matches_js() -> None:
    rng = random.Random(11)
    cases = []
    for k in (20, 3):
        own = os.urandom(32)
        # Random ids, plus many sharing long prefixes with ours (full rows near us).
        ids = [os.urandom(32) for _ in range(150)]
        ids += [own[: rng.randint(0, 4)] + os.urandom(32)[:32] for _ in range(60)]
        ids = [i[:32] for i in ids] + [own]
        targets = [os.urandom(32) for _ in range(10)] + [own, ids[0]]
        cases.append((own, k, ids, targets))
    js = run_js(
        [
            {
                "op": "table",
                "id": own.hex(),
                "k": k,
                "nodes": [i.hex() for i in ids],
                "targets": [t.hex() for t in targets],
            }
            for own, k, ids, targets in cases
        ]
    )
    for (own, k, ids, targets), out in zip(cases, js, strict=True):
        table = RoutingTable(own, k)
        added = [table.add(RoutingNode(i, "127.0.0.1", 1)) for i in ids]
        assert added == out["added"]
        assert len(table) == out["size"]
        for target, expected in zip(targets, out["closest"], strict=True):
            assert [n.id.hex() for n in table.closest(target)] == expected
