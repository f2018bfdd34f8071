"""PeerPool under random event sequences (Hypothesis): its invariants always hold.

Whatever order lookups, dials, handshakes, closes, bans, explicit joins, topic changes,
suspends and the clock arrive in: one slot per peer at most, the queued/waiting flags match
the queue and the timer, the dial count matches the dials in flight, and no peer is kept
that nothing refers to (no leak).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings, strategies as st

from p2pswarm.peer_record import PeerAddress, PeerRecord
from p2pswarm.swarm._connection_set import Slot
from p2pswarm.swarm._policy import Limits
from p2pswarm.swarm._pool import PeerPool
from p2pswarm.swarm._retry import Backoffs
from p2pswarm.swarm.peer_info import PeerInfo

LOCAL = bytes([0x80]) * 32
KEYS = [bytes([n]) * 32 for n in (0x10, 0x30, 0x70, 0x90, 0xC0, 0xF0)]
TOPICS = [bytes([n]) * 32 for n in (1, 2)]


@dataclass
class Conn:
    bytes_read: int = 0
    bytes_written: int = 0


class Driver:
    def __init__(self, limits: Limits) -> None:
        self.modes: dict[bytes, bool] = {TOPICS[0]: True, TOPICS[1]: False}
        self.pool: PeerPool[Conn] = PeerPool(
            LOCAL,
            limits,
            Backoffs(1.0, 2.0, 3.0, 4.0),
            0.5,
            topic_mode=self.modes.get,
            rng=random.Random(1),
        )
        self.now = 0.0
        self.dialling: list[tuple[Slot[Conn], PeerInfo]] = []
        self.open: list[tuple[Slot[Conn], PeerInfo]] = []
        self.handshaking: list[Slot[Conn]] = []

    def step(self, op: str, n: int, flag: bool) -> None:
        pool, key = self.pool, KEYS[n % len(KEYS)]
        topic = TOPICS[n % len(TOPICS)]
        if op == "found":
            pool.found(PeerRecord(key, (PeerAddress("127.0.0.1", 1000 + n),)), topic)
        elif op == "dial":
            self.dialling += pool.next_dials()
        elif op == "dial_ended" and self.dialling:
            slot, peer = self.dialling.pop(n % len(self.dialling))
            if pool.dial_ended(slot, peer, ok=flag, now=self.now):
                pool.opened(slot, Conn(), peer, self.now)
                self.open.append((slot, peer))
        elif op == "close" and self.open:
            slot, peer = self.open.pop(n % len(self.open))
            pool.closed(slot, peer, self.now)
        elif op == "traffic" and self.open:
            slot, _ = self.open[n % len(self.open)]
            slot.connection = Conn(bytes_read=n + 1, bytes_written=n + 1)
        elif op == "admit":
            admitted, existing, _ = pool.admit(key, [topic])
            if existing is not None:
                for entry in list(self.open):
                    if entry[0] is existing:
                        self.open.remove(entry)
                        pool.closed(existing, entry[1], self.now)
            if admitted is not None:
                self.handshaking.append(admitted)
        elif op == "handshake_done" and self.handshaking:
            slot = self.handshaking.pop(n % len(self.handshaking))
            if flag and not slot.superseded and pool.accepting:
                peer = pool.peer(slot.remote_key, client=False)
                pool.opened(slot, Conn(), peer, self.now)
                self.open.append((slot, peer))
            else:
                pool.accept_failed(slot, self.now)
        elif op == "ban":
            if flag:
                pool.ban(key, RuntimeError("firewalled"))
            elif key in pool.peers:
                pool.peers[key].ban(False)
        elif op == "join_peer":
            pool.join_peer(key)
        elif op == "leave_peer":
            pool.leave_peer(key)
        elif op == "mode":
            if flag:
                self.modes[topic] = not self.modes.get(topic, False)
            else:
                self.modes.pop(topic, None)
                pool.left_topic(topic, close=True)
        elif op == "time":
            self.now += n * 0.7
            pool.retries_due(self.now)
        elif op == "suspend":
            pool.accepting = not flag
            if flag:
                pool.reset()
        elif op == "flush":
            token = pool.register_flush()
            if token is not None:
                pool.flushes.cancel(token)

    def check(self) -> None:
        pool = self.pool
        assert pool.connecting == len(self.dialling)
        assert pool.connecting >= 0
        slot_keys = [s.remote_key for s in pool.slots]
        assert len(slot_keys) == len(set(slot_keys))
        queued = set(pool.queue)
        for key, peer in pool.peers.items():
            assert peer.public_key == key
            assert peer.queued == (peer in queued)
            assert not peer._collectable(has_connection=key in pool.slots), f"leaked {peer!r}"
            assert not (peer.banned and (peer.queued or peer.waiting))
        assert all(p.public_key in pool.peers for p in queued)
        assert pool.explicit_peers == {p for p in pool.peers.values() if p.explicit}
        assert len(pool.retry) == sum(p.waiting for p in pool.peers.values())
        for slot, _ in self.open:
            assert pool.slots.get(slot.remote_key) is slot or slot.superseded


OPS = st.sampled_from(
    [
        "found",
        "dial",
        "dial_ended",
        "close",
        "traffic",
        "admit",
        "handshake_done",
        "ban",
        "join_peer",
        "leave_peer",
        "mode",
        "time",
        "suspend",
        "flush",
    ]
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    steps=st.lists(st.tuples(OPS, st.integers(0, 11), st.booleans()), max_size=60),
    max_peers=st.integers(1, 6),
    max_parallel=st.integers(1, 3),
    max_server=st.none() | st.integers(0, 3),
)
def test_invariants_hold_for_any_event_order(
    steps: list[tuple[str, int, bool]], max_peers: int, max_parallel: int, max_server: int | None
) -> None:
    driver = Driver(Limits(max_peers, max_parallel, None, max_server))
    for op, n, flag in steps:
        driver.step(op, n, flag)
        driver.check()
