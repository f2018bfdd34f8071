"""PeerInfo: priority from attempts, fast retry, GC predicate, ban hook (pure, fake clock)."""

from __future__ import annotations

import pytest

from p2pswarm.swarm.peer_info import MAX_TOPICS_PER_PEER, MIN_CONNECTION_TIME, PeerInfo, Priority

KEY = bytes(range(32))


def test_priority_follows_attempts() -> None:
    peer = PeerInfo(KEY)
    seen = []
    for _ in range(6):
        seen.append(peer.priority)
        peer._disconnected(now=0.0)
    assert seen == [
        Priority.NORMAL,
        Priority.VERY_HIGH,
        Priority.HIGH,
        Priority.LOW,
        Priority.VERY_LOW,
        Priority.VERY_LOW,
    ]


def test_prioritized_means_normal_or_better() -> None:
    peer = PeerInfo(KEY)
    assert peer.prioritized
    peer.attempts = 3
    assert not peer.prioritized
    peer._reset()
    assert peer.attempts == 0 and peer.prioritized


def test_short_connection_counts_an_attempt() -> None:
    peer = PeerInfo(KEY)
    peer._connected(100.0, client=True)
    peer._disconnected(100.0 + MIN_CONNECTION_TIME - 0.001)
    peer._connected(200.0, client=True)
    peer._disconnected(201.0)
    assert peer.attempts == 2
    assert peer.proven and peer.client and not peer.server
    assert peer.disconnected_time == 201.0 and peer.connected_time is None


def test_long_connection_resets_attempts_before_counting() -> None:
    peer = PeerInfo(KEY)
    peer.attempts = 3
    peer._connected(10.0, client=False)
    peer._disconnected(10.0 + MIN_CONNECTION_TIME)
    assert peer.attempts == 1
    assert peer.server


def test_failed_dial_never_resets() -> None:
    peer = PeerInfo(KEY)
    for t in range(4):
        peer._disconnected(float(t) * 100)
    assert peer.attempts == 4
    assert not peer.proven


def test_topics_are_deduplicated_and_bounded() -> None:
    peer = PeerInfo(KEY)
    assert peer._add_topic(b"a" * 32)
    assert not peer._add_topic(b"a" * 32)
    for i in range(MAX_TOPICS_PER_PEER + 10):
        peer._add_topic(i.to_bytes(32, "big"))
    assert len(peer.topics) == MAX_TOPICS_PER_PEER
    assert peer.topics[0] == b"a" * 32


@pytest.mark.parametrize("flag", ["banned", "queued", "waiting", "explicit"])
def test_collectable_only_when_nothing_refers_to_it(flag: str) -> None:
    peer = PeerInfo(KEY)
    assert peer._collectable(has_connection=False)
    assert not peer._collectable(has_connection=True)
    setattr(peer, flag, True)
    assert not peer._collectable(has_connection=False)


def test_ban_calls_hook_once_per_change() -> None:
    calls: list[tuple[bytes, bool]] = []
    peer = PeerInfo(KEY, on_ban=lambda p, b: calls.append((p.public_key, b)))
    peer.ban()
    peer.ban(True)
    peer.ban(False)
    assert calls == [(KEY, True), (KEY, False)]
    assert not peer.banned


def test_reconnect_flag() -> None:
    peer = PeerInfo(KEY)
    peer.reconnect(False)
    assert not peer.reconnecting
    peer.reconnect()
    assert peer.reconnecting


def test_rejects_bad_key() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        PeerInfo(b"short")
    with pytest.raises(TypeError):
        PeerInfo("not bytes")  # type: ignore[arg-type]


def test_repr_is_readable() -> None:
    peer = PeerInfo(KEY, client=True)
    peer.explicit = True
    text = repr(peer)
    assert KEY.hex()[:16] in text and "client" in text and "explicit" in text
