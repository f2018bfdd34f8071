"""Where a swarm listens by default: reachable by the peers of its network, no more."""

from __future__ import annotations

import pytest

from p2pswarm.networks._backend import LOOPBACK, WILDCARD, default_host
from p2pswarm.networks.network_config import BOOTSTRAP_ENV
from p2pswarm.swarm import Swarm

PUBLIC = ("192.0.2.7", 49737)  # TEST-NET-1: never contacted, only classified


def test_local_network_listens_on_loopback() -> None:
    assert default_host(None, None) == LOOPBACK


@pytest.mark.parametrize(
    "nodes",
    [
        [],
        [("127.0.0.1", 49737)],
        [("127.0.0.1", 1), ("127.5.6.7", 2), ("::1", 3), ("[::1]", 4), ("localhost", 5)],
    ],
)
def test_loopback_bootstraps_listen_on_loopback(nodes: list[tuple[str, int]]) -> None:
    assert default_host(nodes, None) == LOOPBACK
    assert default_host(None, nodes) == LOOPBACK


@pytest.mark.parametrize(
    "nodes",
    [
        [PUBLIC],
        [("127.0.0.1", 49737), PUBLIC],
        [("10.0.0.2", 49737)],
        [("2001:db8::1", 49737)],
        [("node1.example.org", 49737)],
    ],
)
def test_a_bootstrap_elsewhere_listens_everywhere(nodes: list[tuple[str, int]]) -> None:
    assert default_host(nodes, None) == WILDCARD
    assert default_host(None, nodes) == WILDCARD


def test_an_explicit_bootstrap_list_wins_over_the_environment() -> None:
    assert default_host([("127.0.0.1", 49737)], [PUBLIC]) == LOOPBACK
    assert default_host([PUBLIC], [("127.0.0.1", 49737)]) == WILDCARD


@pytest.mark.anyio
async def test_the_swarm_uses_the_decision_and_an_explicit_host_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Constructing binds nothing (only entering does): only the chosen host is read.
    monkeypatch.delenv(BOOTSTRAP_ENV, raising=False)
    assert Swarm()._host == LOOPBACK
    assert Swarm(bootstrap=[PUBLIC])._host == WILDCARD
    assert Swarm(bootstrap=[PUBLIC], host="127.0.0.1")._host == "127.0.0.1"
    monkeypatch.setenv(BOOTSTRAP_ENV, f"{PUBLIC[0]}:{PUBLIC[1]}")
    assert Swarm()._host == WILDCARD
    assert Swarm(host="::1")._host == "::1"
    monkeypatch.setenv(BOOTSTRAP_ENV, "127.0.0.1:49737")
    assert Swarm()._host == LOOPBACK
