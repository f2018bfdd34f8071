"""Slots per peer and the dedup rule both sides apply independently (pure)."""

from __future__ import annotations

import itertools

import pytest

from p2pswarm.swarm._connection_set import ConnectionSet, Resolution, resolve_duplicate

SMALL = b"\x01" * 32
LARGE = b"\xff" * 32


def decide(
    local: bytes, remote: bytes, new_is_initiator: bool, read: int = 0, written: int = 0
) -> Resolution:
    return resolve_duplicate(
        local_key=local,
        remote_key=remote,
        new_is_initiator=new_is_initiator,
        existing_bytes_read=read,
        existing_bytes_written=written,
    )


def test_the_larger_keys_dial_wins_on_both_sides() -> None:
    # The smaller side sees the larger side's dial arrive: it replaces its own pending dial.
    assert decide(SMALL, LARGE, new_is_initiator=False) is Resolution.REPLACE_EXISTING
    # The larger side sees the smaller side's dial arrive: it keeps its own dial.
    assert decide(LARGE, SMALL, new_is_initiator=False) is Resolution.KEEP_EXISTING


@pytest.mark.parametrize(("a", "b"), list(itertools.permutations([SMALL, LARGE, b"\x80" * 32], 2)))
def test_both_sides_keep_the_same_connection(a: bytes, b: bytes) -> None:
    # Simultaneous dials: A holds its dial to B and sees B's dial arrive; B the converse.
    # Exactly one of the two dials must survive, the same one on both sides.
    a_keeps_own_dial = decide(a, b, new_is_initiator=False) is Resolution.KEEP_EXISTING
    b_keeps_own_dial = decide(b, a, new_is_initiator=False) is Resolution.KEEP_EXISTING
    assert a_keeps_own_dial != b_keeps_own_dial
    winner = a if a_keeps_own_dial else b
    assert winner == max(a, b)


def test_outdated_existing_connection_loses_whatever_the_keys() -> None:
    assert decide(LARGE, SMALL, False, read=10, written=5) is Resolution.REPLACE_EXISTING
    assert decide(SMALL, LARGE, True, read=1, written=1) is Resolution.REPLACE_EXISTING


@pytest.mark.parametrize(("read", "written"), [(0, 0), (10, 0), (0, 10)])
def test_one_way_traffic_is_not_outdated(read: int, written: int) -> None:
    assert decide(LARGE, SMALL, False, read, written) is Resolution.KEEP_EXISTING


def test_claim_supersedes_and_release_only_current() -> None:
    conns: ConnectionSet[str] = ConnectionSet()
    first = conns.claim(SMALL, is_initiator=True)
    assert SMALL in conns and conns.get(SMALL) is first and len(conns) == 1
    second = conns.claim(SMALL, is_initiator=False)
    assert first.superseded and not second.superseded
    assert not conns.release(first)
    assert conns.get(SMALL) is second
    assert conns.release(second)
    assert SMALL not in conns and conns.get(SMALL) is None


def test_counts_by_direction_and_state() -> None:
    conns: ConnectionSet[str] = ConnectionSet()
    out_open = conns.claim(b"\x02" * 32, is_initiator=True)
    out_open.connection = "c1"
    conns.claim(b"\x03" * 32, is_initiator=True)
    incoming = conns.claim(b"\x04" * 32, is_initiator=False)
    incoming.connection = "c2"
    assert conns.count() == 3
    assert conns.count(is_initiator=True) == 2
    assert conns.count(is_initiator=True, pending=True) == 1
    assert conns.count(is_initiator=False, pending=False) == 1
    assert conns.count(pending=True) == 1
    assert out_open.is_open
    out_open.retired = True
    assert not out_open.is_open
    assert {s.remote_key for s in conns} == {b"\x02" * 32, b"\x03" * 32, b"\x04" * 32}


def test_counts_by_direction_follow_every_claim_and_release() -> None:
    import random

    rng = random.Random(5)
    slots: ConnectionSet[object] = ConnectionSet()
    keys = [bytes([i]) * 32 for i in range(6)]
    held = []
    for _ in range(400):
        if held and rng.random() < 0.4:
            slots.release(held.pop(rng.randrange(len(held))))  # maybe a superseded one
        else:
            held.append(slots.claim(rng.choice(keys), is_initiator=rng.random() < 0.5))
        current = [s for s in held if slots.get(s.remote_key) is s]
        for direction in (True, False):
            expected = sum(1 for s in current if s.is_initiator == direction)
            assert slots.count(is_initiator=direction) == expected
        assert slots.count() == len(slots) == len(current)
