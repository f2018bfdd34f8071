"""The CI subset of the NAT matrix: 7 pairs of NAT kinds, JS HyperDHT on both sides, and
p2pswarm's HyperDHT against itself and against JS in both roles (the same lab).

Every pair must connect, directly (there is no relay in the lab). The pairs cover every kind,
the open path, consistent-consistent hole punching, and both directions of the birthday punch
with one endpoint-dependent side. The full 21 pairs: ``python -m tests.natlab.matrix``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.natlab.lab import SKIP_REASON
from tests.natlab.matrix import SUBSET, run_matrix
from tests.natlab.nat import KINDS
from tests.natlab.peer import JS_PEER, JS_SKIP_REASON, PY_PEER

pytestmark = [
    pytest.mark.natlab,
    pytest.mark.interop,
    pytest.mark.skipif(SKIP_REASON is not None, reason=str(SKIP_REASON)),
    pytest.mark.skipif(JS_SKIP_REASON is not None, reason=str(JS_SKIP_REASON)),
]


@pytest.fixture(scope="module")
def rows() -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["server_kind"], r["client_kind"]): r for r in run_matrix(SUBSET)}


def test_subset_covers_every_kind() -> None:
    assert len(SUBSET) == 7
    assert {kind for pair in SUBSET for kind in pair} == set(KINDS)


@pytest.mark.parametrize("pair", SUBSET, ids=[f"{a}-{b}" for a, b in SUBSET])
def test_js_pair_connects_directly(
    rows: dict[tuple[str, str], dict[str, Any]], pair: tuple[str, str]
) -> None:
    row = rows[pair]
    assert row["connected"], row
    assert row["path"] == "direct", row


PY_COMBOS = ((PY_PEER, PY_PEER), (PY_PEER, JS_PEER), (JS_PEER, PY_PEER))


@pytest.fixture(scope="module")
def py_rows() -> dict[tuple[str, str, str], dict[str, Any]]:
    rows = run_matrix(SUBSET, PY_COMBOS)
    return {(r["programs"], r["server_kind"], r["client_kind"]): r for r in rows}


@pytest.mark.parametrize("programs", ["py:py", "py:js", "js:py"])
@pytest.mark.parametrize("pair", SUBSET, ids=[f"{a}-{b}" for a, b in SUBSET])
def test_python_pair_connects_directly(
    py_rows: dict[tuple[str, str, str], dict[str, Any]], programs: str, pair: tuple[str, str]
) -> None:
    row = py_rows[(programs, *pair)]
    assert row["connected"], row
    assert row["path"] == "direct", row
