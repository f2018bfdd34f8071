"""Rendezvous hashing: agreement, minimal movement, spread."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, strategies as st

from p2pswarm.ownership import ranked, responsible

RNG = random.Random("ownership")
MEMBERS = [RNG.randbytes(32) for _ in range(10)]
KEYS = [f"key-{i}".encode() for i in range(2000)]


@given(st.permutations(MEMBERS), st.binary(max_size=64))
def test_every_order_of_the_members_agrees(members: list[bytes], key: bytes) -> None:
    assert responsible(key, members) == responsible(key, MEMBERS) == ranked(key, members)[0]


def test_no_members_no_owner() -> None:
    assert responsible(b"k", []) is None and ranked(b"k", []) == []


def test_a_member_joining_takes_keys_only_for_itself() -> None:
    before = {k: responsible(k, MEMBERS) for k in KEYS}
    newcomer = RNG.randbytes(32)
    after = {k: responsible(k, [*MEMBERS, newcomer]) for k in KEYS}
    moved = [k for k in KEYS if before[k] != after[k]]
    assert all(after[k] == newcomer for k in moved)
    assert 0.05 < len(moved) / len(KEYS) < 0.15  # about 1/11 of the keys


def test_a_member_leaving_gives_away_only_its_keys() -> None:
    gone = MEMBERS[3]
    before = {k: responsible(k, MEMBERS) for k in KEYS}
    after = {k: responsible(k, [m for m in MEMBERS if m != gone]) for k in KEYS}
    for k in KEYS:
        if before[k] != gone:
            assert after[k] == before[k]
        else:
            assert after[k] == ranked(k, MEMBERS)[1]  # the next in line: the replica


def test_keys_spread_over_members() -> None:
    counts = Counter(responsible(k, MEMBERS) for k in KEYS)
    assert len(counts) == len(MEMBERS)
    assert max(counts.values()) < 2 * len(KEYS) / len(MEMBERS)
