"""Round-trip tokens and NAT observation (both pure)."""

from __future__ import annotations

from p2pswarm.dht.nat import NatObserver, NatType
from p2pswarm.dht.tokens import TokenIssuer


def test_tokens_are_bound_to_the_ip() -> None:
    tokens = TokenIssuer(0.0, rotation=60)
    token = tokens.issue("127.0.0.1", 0.0)
    assert tokens.check("127.0.0.1", token, 1.0)
    assert not tokens.check("127.0.0.2", token, 1.0)
    assert not tokens.check("127.0.0.1", bytes(32), 1.0)
    assert not tokens.check("127.0.0.1", token[:16], 1.0)


def test_tokens_survive_one_rotation_not_two() -> None:
    tokens = TokenIssuer(0.0, rotation=60)
    token = tokens.issue("127.0.0.1", 0.0)
    assert tokens.check("127.0.0.1", token, 61.0)  # previous secret
    assert not tokens.check("127.0.0.1", token, 122.0)  # rotated twice


def test_long_idle_invalidates_both_secrets() -> None:
    tokens = TokenIssuer(0.0, rotation=60)
    token = tokens.issue("127.0.0.1", 0.0)
    assert not tokens.check("127.0.0.1", token, 500.0)


def test_nat_unknown_until_two_reporters() -> None:
    nat = NatObserver(("127.0.0.1", 5000))
    assert nat.status().nat_type is NatType.UNKNOWN and nat.status().address is None
    nat.add(("10.0.0.1", 1), ("127.0.0.1", 5000))
    assert nat.status().nat_type is NatType.UNKNOWN
    assert nat.status().address == ("127.0.0.1", 5000)


def test_nat_open_consistent_random() -> None:
    opened = NatObserver(("127.0.0.1", 5000))
    consistent = NatObserver(("192.168.1.2", 5000))
    randomized = NatObserver(("192.168.1.2", 5000))
    for i in range(3):
        opened.add(("10.0.0.1", i + 1), ("127.0.0.1", 5000))
        consistent.add(("10.0.0.1", i + 1), ("203.0.113.5", 40000))
        randomized.add(("10.0.0.1", i + 1), ("203.0.113.5", 40000 + i))
    assert opened.status().nat_type is NatType.OPEN
    assert consistent.status().nat_type is NatType.CONSISTENT
    assert consistent.status().address == ("203.0.113.5", 40000)
    assert randomized.status().nat_type is NatType.RANDOM


def test_nat_keeps_one_bounded_report_per_responder() -> None:
    nat = NatObserver()
    for i in range(100):
        nat.add(("10.0.0.1", 1 + i % 50), ("203.0.113.5", 1))
    assert nat.status().reporters == 32
    nat.add(("10.0.0.1", 1), ("203.0.113.5", 2))
    assert nat.status().reporters == 32
