"""The matrix runner's report and the NAT rules, without building anything (runs anywhere)."""

from __future__ import annotations

import pytest

from tests.natlab.matrix import ALL_PAIRS, ORDERED_PAIRS, _parse_pairs, markdown_table
from tests.natlab.nat import KINDS, router_rules
from tests.natlab.peer import PeerProgram


def test_pair_lists() -> None:
    assert len(ALL_PAIRS) == 21
    assert len(set(ALL_PAIRS)) == 21
    assert len(ORDERED_PAIRS) == 36


def test_parse_pairs_refuses_unknown_kinds() -> None:
    assert _parse_pairs("none:symmetric") == [("none", "symmetric")]
    with pytest.raises(SystemExit):
        _parse_pairs("none:cone")


def test_markdown_table_is_a_triangle_for_unordered_pairs() -> None:
    rows = [
        {"server_kind": "none", "client_kind": "symmetric", "connected": True},
        {"server_kind": "symmetric", "client_kind": "symmetric", "connected": False},
    ]
    rows[0].update(path="direct", ms=12)
    rows[1].update(error="HOLEPUNCH_ABORTED")
    table = markdown_table(rows).splitlines()
    assert table[0] == "| server \\ client | none | symmetric |"
    assert table[2] == "| **none** |  | direct, 12 ms |"
    assert table[3] == "| **symmetric** |  | **no** (HOLEPUNCH_ABORTED) |"


@pytest.mark.parametrize("kind", [k for k in KINDS if k not in ("none", "double-nat")])
def test_every_router_masquerades_and_drops_unsolicited(kind: str) -> None:
    rules = router_rules(kind, "10.1.0.2")
    assert 'iifname "wan" ct state new drop' in rules
    assert ("masquerade random" in rules) == (kind == "symmetric")
    assert ("dnat to 10.1.0.2" in rules) == (kind in ("full-cone", "address-restricted"))


def test_peer_program_parse() -> None:
    program = PeerProgram.parse("py", "python -m p2pswarm.natpeer --verbose")
    assert program.argv == ("python", "-m", "p2pswarm.natpeer", "--verbose")
    assert "NODE_PATH" in program.environ()


def test_markdown_table_summarises_repeated_runs() -> None:
    base = {"server_kind": "none", "client_kind": "none", "path": "direct"}
    rows = [{**base, "connected": True, "ms": ms} for ms in (30, 10, 20)]
    rows.append({**base, "connected": False, "error": "ETIMEDOUT"})
    assert markdown_table(rows).splitlines()[2] == "| **none** | **3/4** direct, 20 ms (10..30) |"


def test_the_lab_says_why_it_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.natlab import lab

    monkeypatch.setattr(lab.os, "geteuid", lambda: 1000)
    assert lab._skip_reason() == "the NAT lab needs root (network namespaces and nftables)"
    monkeypatch.setattr(lab.os, "geteuid", lambda: 0)
    monkeypatch.setattr(lab.shutil, "which", lambda tool: None if tool == "nft" else "/bin/x")
    reason = lab._skip_reason()
    assert reason is not None
    assert "nft" in reason
