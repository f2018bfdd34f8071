"""The pure parts of hole punching: nat.js's classification rules, the strategy table, the
LAN address match and the random-punch budget (clock injected)."""

from __future__ import annotations

from p2pswarm.hyperdht.nat import NatAnalysis
from p2pswarm.hyperdht.punch_policy import (
    RandomPunchBudget,
    Strategy,
    choose_strategy,
    match_address,
    random_port,
    unstable,
)
from p2pswarm.protocol.hyperdht_connect import Firewall

OPEN, C, R, U = Firewall.OPEN, Firewall.CONSISTENT, Firewall.RANDOM, Firewall.UNKNOWN


def nat(*reports: tuple[str, int]) -> NatAnalysis:
    n = NatAnalysis(firewalled=True)
    for i, to in enumerate(reports):
        n.add(to, (f"10.0.0.{i}", 49737))
    return n


def test_unfirewalled_is_open() -> None:
    n = NatAnalysis(firewalled=False)
    assert n.firewall == OPEN and n.decided


def test_nothing_is_decided_before_three_samples() -> None:
    n = nat(("1.1.1.1", 5), ("1.1.1.1", 5))
    assert n.firewall == U and not n.decided and n.addresses is None


def test_three_equal_reports_are_consistent() -> None:
    n = nat(("1.1.1.1", 5), ("1.1.1.1", 5), ("1.1.1.1", 5))
    assert n.firewall == C and n.decided and n.addresses == [("1.1.1.1", 5)]


def test_all_different_ports_are_random() -> None:
    n = nat(("1.1.1.1", 5), ("1.1.1.1", 6), ("1.1.1.1", 7))
    assert n.firewall == R and n.addresses == [("1.1.1.1", 0)]


def test_two_hits_on_one_host_with_four_samples_is_random() -> None:
    n = nat(("1.1.1.1", 5), ("1.1.1.1", 5), ("1.1.1.1", 6))
    assert n.firewall == U and not n.decided
    n.add(("1.1.1.1", 7), ("10.0.1.1", 1))
    assert n.firewall == R and n.decided


def test_double_hits_on_two_hosts_are_consistent() -> None:
    n = nat(("1.1.1.1", 5), ("1.1.1.1", 5), ("2.2.2.2", 6), ("2.2.2.2", 6))
    assert n.firewall == C
    assert n.addresses == [("1.1.1.1", 5), ("2.2.2.2", 6)]


def test_a_reporter_counts_once_and_freeze_holds_the_verdict() -> None:
    n = NatAnalysis(firewalled=True)
    for _ in range(5):
        n.add(("1.1.1.1", 5), ("10.0.0.1", 1))
    assert n.sampled == 1
    n = nat(("1.1.1.1", 5), ("1.1.1.1", 5), ("1.1.1.1", 5))
    n.freeze()
    for i in range(5):
        n.add(("1.1.1.1", 100 + i), ("10.9.0.1", i))
    assert n.firewall == C
    n.unfreeze()
    assert n.firewall == C  # the top entry still has its 3 hits


def test_strategy_table() -> None:
    assert choose_strategy(C, C, False) == Strategy.CONSISTENT
    assert choose_strategy(OPEN, C, False) == Strategy.CONSISTENT
    assert choose_strategy(C, R, False) == Strategy.NONE  # needs a verified address
    assert choose_strategy(C, R, True) == Strategy.RANDOM_PROBES
    assert choose_strategy(R, C, True) == Strategy.BIRTHDAY
    assert choose_strategy(R, OPEN, True) == Strategy.BIRTHDAY
    assert choose_strategy(R, R, True) == Strategy.NONE
    assert unstable(R, R) and unstable(U, C) and not unstable(C, R) and not unstable(R, C)


def test_match_address_prefers_the_longest_prefix() -> None:
    ours = [("192.168.122.238", 1)]
    theirs = [("192.168.0.23", 2), ("192.168.122.1", 3), ("10.0.0.1", 4)]
    assert match_address(ours, theirs) == ("192.168.122.1", 3)
    assert match_address(ours, [("192.168.0.23", 2)]) == ("192.168.0.23", 2)
    assert match_address(ours, [("10.0.0.1", 4)]) is None
    assert match_address(ours, []) is None


def test_random_ports_stay_in_range() -> None:
    import random

    rng = random.Random(1)
    assert all(1000 <= random_port(rng) <= 65535 for _ in range(1000))


def test_budget_allows_one_random_punch_and_then_waits() -> None:
    budget = RandomPunchBudget()
    assert not budget.exhausted(0.0)
    budget.running += 1
    assert budget.exhausted(0.0)
    budget.running -= 1
    budget.last = 100.0
    assert budget.exhausted(119.0) and not budget.exhausted(120.0)
