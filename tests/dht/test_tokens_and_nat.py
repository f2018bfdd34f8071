"""Round-trip tokens and NAT observation (both pure)."""

from __future__ import annotations

from hypothesis import assume, given, settings, strategies as st

from p2pswarm.dht.nat import NatObserver, NatStatus, NatType
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


def reporter(i: int) -> tuple[str, int]:
    return (f"198.51.100.{i + 1}", 49737)


def test_nat_unknown_until_two_reporters_agree() -> None:
    nat = NatObserver(("127.0.0.1", 5000))
    assert nat.status() == NatStatus(None, NatType.UNKNOWN, 0)
    nat.add(reporter(0), ("203.0.113.5", 40000))
    assert nat.status() == NatStatus(None, NatType.UNKNOWN, 1)
    nat.add(reporter(1), ("203.0.113.5", 40000))
    assert nat.status() == NatStatus(("203.0.113.5", 40000), NatType.CONSISTENT, 2)


def test_nat_open_consistent_random() -> None:
    opened = NatObserver(("127.0.0.1", 5000))
    consistent = NatObserver(("192.168.1.2", 5000))
    randomized = NatObserver(("192.168.1.2", 5000))
    for i in range(3):
        opened.add(reporter(i), ("127.0.0.1", 5000))
        consistent.add(reporter(i), ("203.0.113.5", 40000))
        randomized.add(reporter(i), ("203.0.113.5", 40000 + i))
    assert opened.status().nat_type is NatType.OPEN
    assert consistent.status().nat_type is NatType.CONSISTENT
    assert consistent.status().address == ("203.0.113.5", 40000)
    assert randomized.status() == NatStatus(None, NatType.RANDOM, 3)


def test_one_honest_report_and_one_lie_say_nothing() -> None:
    nat = NatObserver(("192.168.1.2", 5000))
    nat.add(reporter(0), ("203.0.113.5", 40000))
    nat.add(reporter(1), ("203.0.113.5", 1))  # the liar
    assert nat.status() == NatStatus(None, NatType.UNKNOWN, 2)


def test_a_single_liar_does_not_flip_a_consistent_reading() -> None:
    nat = NatObserver(("192.168.1.2", 5000))
    nat.add(reporter(0), ("203.0.113.5", 40000))
    nat.add(reporter(1), ("203.0.113.9", 7))  # the liar answers early
    nat.add(reporter(2), ("203.0.113.5", 40000))
    assert nat.status() == NatStatus(("203.0.113.5", 40000), NatType.CONSISTENT, 3)


def test_one_host_with_many_ports_is_one_voice() -> None:
    nat = NatObserver(("192.168.1.2", 5000))
    nat.add(reporter(0), ("203.0.113.5", 40000))
    for port in range(1, 20):  # a liar answering from many sockets of one IP
        nat.add(("198.51.100.66", port), ("203.0.113.5", 40000 + port))
    assert nat.status() == NatStatus(None, NatType.UNKNOWN, 2)


def test_on_loopback_each_socket_is_a_reporter() -> None:
    nat = NatObserver(("127.0.0.1", 5000))
    nat.add(("127.0.0.1", 6000), ("127.0.0.1", 5000))
    nat.add(("127.0.0.1", 6001), ("127.0.0.1", 5000))
    assert nat.status() == NatStatus(("127.0.0.1", 5000), NatType.OPEN, 2)


@given(
    honest=st.integers(2, 12),
    mapping=st.sampled_from(["open", "consistent", "random"]),
    lie=st.tuples(st.sampled_from(["203.0.113.5", "192.0.2.1"]), st.integers(1, 65535)),
    liar_position=st.integers(0, 12),
)
@settings(deadline=None)
def test_one_liar_never_changes_a_conclusion(
    honest: int, mapping: str, lie: tuple[str, int], liar_position: int
) -> None:
    local = ("192.168.1.2", 5000)
    if mapping == "open":
        seen = [local] * honest
    elif mapping == "consistent":
        seen = [("203.0.113.5", 40000)] * honest
    else:
        seen = [("203.0.113.5", 50000 + i) for i in range(honest)]
    assume(lie not in seen)  # a liar cannot see what others see of a random mapping
    reports = [*seen]
    reports.insert(min(liar_position, honest), lie)
    nat = NatObserver(local)
    for i, address in enumerate(reports):
        nat.add(reporter(i), address)
    status = nat.status()
    expected = {"open": NatType.OPEN, "consistent": NatType.CONSISTENT, "random": NatType.RANDOM}
    assert status.nat_type is expected[mapping]
    if mapping != "random":
        assert status.address == seen[0]


def test_nat_keeps_one_bounded_report_per_responder() -> None:
    nat = NatObserver()
    for i in range(100):
        nat.add(reporter(i % 50), ("203.0.113.5", 1))
    assert nat.status().reporters == 32
    nat.add(reporter(49), ("203.0.113.5", 2))
    assert nat.status().reporters == 32
