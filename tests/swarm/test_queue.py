"""The shuffled priority queue and the two-lane dial queue (pure)."""

from __future__ import annotations

import random
from collections import Counter

from p2pswarm.swarm._queue import DialQueue, ShuffledPriorityQueue
from p2pswarm.swarm.peer_info import PeerInfo


def test_higher_priority_first() -> None:
    queue: ShuffledPriorityQueue[str] = ShuffledPriorityQueue(random.Random(1))
    queue.push("low", 1)
    queue.push("top", 4)
    queue.push("normal", 2)
    queue.push("bottom", 0)
    assert [queue.pop() for _ in range(5)] == ["top", "normal", "low", "bottom", None]


def test_equal_priorities_come_out_shuffled() -> None:
    firsts: Counter[int] = Counter()
    for seed in range(200):
        queue: ShuffledPriorityQueue[int] = ShuffledPriorityQueue(random.Random(seed))
        for i in range(4):
            queue.push(i, 2)
        firsts[queue.pop() or 0] += 1
    assert set(firsts) == {0, 1, 2, 3}
    assert min(firsts.values()) > 20


def test_push_is_idempotent_and_remove_works_anywhere() -> None:
    queue: ShuffledPriorityQueue[int] = ShuffledPriorityQueue(random.Random(3))
    for i in range(10):
        assert queue.push(i, i % 5)
    assert not queue.push(3, 4)
    assert queue.remove(3) and not queue.remove(3)
    assert 3 not in queue and 4 in queue and len(queue) == 9
    popped = [queue.pop() for _ in range(9)]
    assert sorted(p for p in popped if p is not None) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert queue.pop() is None


def test_priority_out_of_range_is_clamped() -> None:
    queue: ShuffledPriorityQueue[str] = ShuffledPriorityQueue()
    queue.push("x", 99)
    queue.push("y", -5)
    assert queue.pop() == "x" and queue.pop() == "y"


def test_clear_returns_items() -> None:
    queue: ShuffledPriorityQueue[int] = ShuffledPriorityQueue()
    queue.push(1, 0)
    queue.push(2, 4)
    assert sorted(queue.clear()) == [1, 2]
    assert len(queue) == 0


def _peer(n: int, *, attempts: int = 0, explicit: bool = False) -> PeerInfo:
    peer = PeerInfo(n.to_bytes(32, "big"))
    peer.attempts = attempts
    peer.explicit = explicit
    return peer


def test_dial_queue_tracks_queued_flag() -> None:
    queue = DialQueue(random.Random(0))
    peer = _peer(1)
    assert queue.push(peer) and peer.queued
    assert not queue.push(peer)
    assert queue.remove(peer) and not peer.queued
    assert not queue.remove(peer)


def test_dial_queue_explicit_first_and_not_held_by_max_peers() -> None:
    queue = DialQueue(random.Random(0))
    found = _peer(1, attempts=1)  # VERY_HIGH
    kept = _peer(2, attempts=3, explicit=True)  # LOW, but explicit
    queue.push(found)
    queue.push(kept)
    assert queue.pop(within_max_peers=False) is kept
    assert queue.pop(within_max_peers=False) is None
    assert found.queued and len(queue) == 1
    assert queue.pop(within_max_peers=True) is found
    assert not found.queued and not kept.queued


def test_dial_queue_priority_is_taken_at_push_time() -> None:
    queue = DialQueue(random.Random(0))
    dropped = _peer(1, attempts=1)
    fresh = _peer(2)
    queue.push(fresh)
    queue.push(dropped)
    assert queue.pop(within_max_peers=True) is dropped


def test_dial_queue_clear_and_iter() -> None:
    queue = DialQueue()
    peers = [_peer(1), _peer(2, explicit=True)]
    for p in peers:
        queue.push(p)
    assert set(queue) == set(peers) and peers[1] in queue
    assert set(queue.clear()) == set(peers)
    assert not any(p.queued for p in peers) and len(queue) == 0
