"""Node info: exchanged on open, pushed on change, bounded, rate limited both ways."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from p2pswarm import PeerInfo, Swarm, topic
from p2pswarm.mux import Channel, JSONCodec, Mux, SwarmMux
from p2pswarm.node_info import BURST, MAX_EXCESS, PROTOCOL, NodeInfo, UpdateLimiter, check_info
from p2pswarm.testing import FakeClock, create_testnet

pytestmark = pytest.mark.anyio
ROOM = topic("node info room")
TIMEOUT = 20.0


class Seen:
    """Every (peer, info) event of one swarm, with a wake-up."""

    def __init__(self, swarm: Swarm) -> None:
        self.events: list[tuple[bytes, dict[str, Any]]] = []
        self._event = anyio.Event()
        swarm.on_info(self._add)

    def _add(self, peer: PeerInfo, info: dict[str, Any]) -> None:
        self.events.append((peer.public_key, info))
        self._event.set()
        self._event = anyio.Event()

    async def wait(self, predicate: Callable[[], bool]) -> None:
        with anyio.fail_after(TIMEOUT):
            while not predicate():
                await self._event.wait()


@asynccontextmanager
async def pair(
    setup: Callable[[Swarm, Swarm], None],
) -> AsyncIterator[tuple[Swarm, Swarm]]:
    """``a`` (server) and ``b`` (client) of one topic; ``setup(a, b)`` runs before joining."""
    async with (
        create_testnet(3) as net,
        Swarm(bootstrap=net.bootstrap) as a,
        Swarm(bootstrap=net.bootstrap) as b,
    ):
        setup(a, b)
        await a.join(ROOM, client=False).flushed()
        b.join(ROOM, server=False)
        yield a, b


def test_check_info() -> None:
    assert check_info({"a": [1, 2]}) == {"a": [1, 2]}
    with pytest.raises(TypeError):
        check_info(["not", "a", "mapping"])
    with pytest.raises(TypeError):
        check_info({"x": object()})
    with pytest.raises(ValueError, match="above"):
        check_info({"big": "x" * 5000})


def test_update_limiter() -> None:
    limiter = UpdateLimiter(burst=3, rate=1.0)
    assert [limiter.allow(0.0) for _ in range(5)] == [True, True, True, False, False]
    assert limiter.excess == 2
    assert limiter.allow(1.0) and limiter.excess == 0
    assert not limiter.allow(1.0)
    assert limiter.allow(10.0) and limiter.tokens == 2.0  # capped at the burst


async def test_exchanged_on_open_and_pushed_on_change() -> None:
    seen: dict[str, Seen] = {}

    def setup(a: Swarm, b: Swarm) -> None:
        NodeInfo.of(a, min_push_interval=0.0)
        a.set_info({"name": "a", "version": 1})
        b.set_info({"name": "b"})
        seen["a"], seen["b"] = Seen(a), Seen(b)

    async with pair(setup) as (a, b):
        ka, kb = a.key_pair.public_key, b.key_pair.public_key
        await seen["b"].wait(lambda: (ka, {"name": "a", "version": 1}) in seen["b"].events)
        await seen["a"].wait(lambda: (kb, {"name": "b"}) in seen["a"].events)
        assert b.peers[ka].info == {"name": "a", "version": 1}
        assert a.info == {"name": "a", "version": 1}
        a.set_info({"name": "a", "version": 2})
        await seen["b"].wait(lambda: b.peers[ka].info == {"name": "a", "version": 2})
        assert seen["b"].events[-1] == (ka, {"name": "a", "version": 2})
        with pytest.raises(ValueError):
            a.set_info({"big": "x" * 5000})
        assert a.info == {"name": "a", "version": 2}


async def test_set_info_in_a_loop_is_coalesced() -> None:
    seen: dict[str, Seen] = {}

    def setup(a: Swarm, b: Swarm) -> None:
        NodeInfo.of(a, min_push_interval=0.05)
        a.set_info({"n": 0})
        seen["b"] = Seen(b)

    async with pair(setup) as (a, b):
        ka = a.key_pair.public_key
        await seen["b"].wait(lambda: bool(seen["b"].events))
        for n in range(1, 301):
            a.set_info({"n": n})
            await anyio.lowlevel.checkpoint()
        await seen["b"].wait(lambda: b.peers[ka].info == {"n": 300})
        assert len(seen["b"].events) < 100  # 301 values, a handful of messages


class Hostile:
    """Speaks the info channel by hand, without our bounds."""

    def __init__(self, handshake: object, updates: list[object] | None = None) -> None:
        self.handshake = handshake
        self.updates = updates or []
        self.closed = anyio.Event()

    def setup(self, mux: Mux, peer: PeerInfo) -> None:
        loose = JSONCodec(max_size=1 << 20)
        channel = mux.create_channel(
            PROTOCOL,
            handshake=loose,
            messages=[loose],
            on_open=self._on_open,
            on_close=lambda remote, channel: self.closed.set(),
        )
        assert channel is not None
        channel.open(self.handshake)

    async def _on_open(self, handshake: object, channel: Channel) -> None:
        channel.mux.start_soon(self._flood, channel)

    async def _flood(self, channel: Channel) -> None:
        for update in self.updates:
            try:
                await channel.messages[0].send(update)
            except Exception:
                return


async def test_a_peer_pushing_in_a_loop_is_rate_limited_then_dropped() -> None:
    hostile = Hostile({"n": 0}, [{"n": i} for i in range(1, BURST + MAX_EXCESS + 50)])
    seen: dict[str, Seen] = {}
    clock = FakeClock(100.0)  # frozen: no tokens come back

    def setup(a: Swarm, b: Swarm) -> None:
        NodeInfo.of(a, clock=clock)
        a.set_info({})
        seen["a"] = Seen(a)
        SwarmMux.of(b).on_mux(hostile.setup)

    async with pair(setup) as (a, b):
        with anyio.fail_after(TIMEOUT):
            await hostile.closed.wait()
        kb = b.key_pair.public_key
        infos = [info for key, info in seen["a"].events if key == kb]
        assert infos == [{"n": i} for i in range(BURST + 1)]  # the handshake, then the burst
        assert NodeInfo.of(a).dropped == MAX_EXCESS + 1


@pytest.mark.parametrize(
    "handshake",
    [{"big": "x" * 5000}, ["not", "an", "object"], "text"],
    ids=["oversized", "a-list", "a-string"],
)
async def test_oversized_or_non_object_info_drops_the_connection(handshake: object) -> None:
    hostile = Hostile(handshake)
    seen: dict[str, Seen] = {}

    def setup(a: Swarm, b: Swarm) -> None:
        a.set_info({"name": "a"})
        seen["a"] = Seen(a)
        SwarmMux.of(b).on_mux(hostile.setup)

    async with pair(setup) as (a, b):
        with anyio.fail_after(TIMEOUT):
            await hostile.closed.wait()
        assert seen["a"].events == []
        kb = b.key_pair.public_key
        assert kb not in a.peers or a.peers[kb].info == {}
