"""The pure policies of p2pswarm.rpc: peer selection and rate limiting (no I/O, no clock)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, strategies as st

from p2pswarm.rpc.ratelimit import RateLimiter, Verdict
from p2pswarm.rpc.selection import PeerStats, score, select_for_request, select_for_send

KEYS = [bytes([i]) * 32 for i in range(6)]


def test_request_goes_to_a_good_peer_before_a_poor_one() -> None:
    stats = {KEYS[0]: PeerStats(ok=0, failed=9), KEYS[1]: PeerStats(ok=5, failed=1)}
    rng = random.Random(1)
    assert {select_for_request(KEYS[:2], stats, rng) for _ in range(50)} == {KEYS[1]}


def test_request_spreads_load_to_the_least_busy_peer() -> None:
    stats = {k: PeerStats(ok=3, in_flight=2) for k in KEYS[:3]}
    stats[KEYS[2]].in_flight = 0
    assert select_for_request(KEYS[:3], stats, random.Random(0)) == KEYS[2]
    # Equal peers share: over many picks each gets a fair part.
    counts = Counter(select_for_request(KEYS[:3], {}, random.Random(i)) for i in range(300))
    assert set(counts) == set(KEYS[:3]) and min(counts.values()) > 60


def test_request_falls_back_to_poor_peers_and_none_without_peers() -> None:
    stats = {KEYS[0]: PeerStats(failed=5), KEYS[1]: PeerStats(failed=9)}
    assert select_for_request(KEYS[:2], stats, random.Random(0)) == KEYS[0]
    assert select_for_request([], stats, random.Random(0)) is None
    assert score(PeerStats()) == 0.5 and score(PeerStats(penalty=0.5)) == 0.0


def test_send_balances_outbound_and_inbound() -> None:
    stats = {k: PeerStats(outbound=i < 3) for i, k in enumerate(KEYS)}
    chosen = select_for_send(KEYS, stats, 4, random.Random(3))
    assert len(chosen) == len(set(chosen)) == 4
    assert sum(stats[k].outbound for k in chosen) == 2
    # Not enough inbound peers: the rest from outbound.
    only_out = {k: PeerStats(outbound=True) for k in KEYS}
    only_out[KEYS[5]].outbound = False
    assert len(select_for_send(KEYS, only_out, 5, random.Random(0))) == 5
    assert select_for_send(KEYS, stats, 0, random.Random(0)) == []


@given(st.integers(0, 10), st.lists(st.booleans(), max_size=8), st.integers(0, 1000))
def test_send_never_repeats_and_never_exceeds(n: int, outbound: list[bool], seed: int) -> None:
    keys = KEYS[: len(outbound)] + [bytes([9, i]) * 16 for i in range(max(0, len(outbound) - 6))]
    stats = {k: PeerStats(outbound=o) for k, o in zip(keys, outbound, strict=False)}
    chosen = select_for_send(keys, stats, n, random.Random(seed))
    assert len(chosen) == len(set(chosen)) == min(n, len(keys))


def test_rate_limit_refuses_penalises_then_bans_and_recovers() -> None:
    limiter = RateLimiter(rate=10, burst=3, penalty=30, recovery=10)
    key = KEYS[0]
    assert [limiter.admit(key, 0.0) for _ in range(3)] == [Verdict.ALLOW] * 3
    assert limiter.admit(key, 0.0) is Verdict.REFUSE
    assert limiter.penalty_of(key) == pytest.approx(0.3)
    # A tenth of a second later one token is back.
    assert limiter.admit(key, 0.1) is Verdict.ALLOW
    # Good behaviour restores reputation; a flood ends in a ban.
    assert limiter.admit(key, 10.0) is Verdict.ALLOW and limiter.reputation(key) == 100
    verdicts = [limiter.admit(key, 10.0) for _ in range(10)]
    assert Verdict.REFUSE in verdicts and verdicts[-1] is Verdict.BAN
    other = KEYS[1]
    assert limiter.admit(other, 10.0) is Verdict.ALLOW  # per peer
    limiter.forget(key)
    assert limiter.reputation(key) == 100
