"""Per-source request budgets: the pure token bucket, then a node that enforces it."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given, settings, strategies as st

from p2pswarm.dht import DHTNode
from p2pswarm.dht.messages import Command, Request, Response, decode
from p2pswarm.dht.ratelimit import RateLimit, SourceRateLimiter, source_key

from .helpers import new_rid, open_raw_peer


def test_a_burst_then_the_sustained_rate() -> None:
    limiter = SourceRateLimiter(RateLimit(rate=10, burst=5))
    assert [limiter.allow("203.0.113.1", 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert limiter.throttled == 2
    assert limiter.allow("203.0.113.1", 0.1)  # 0.1 s at 10/s: one token back
    assert not limiter.allow("203.0.113.1", 0.1)
    assert limiter.allow("203.0.113.2", 0.1)  # another source has its own bucket


def test_refill_stops_at_the_burst() -> None:
    limiter = SourceRateLimiter(RateLimit(rate=10, burst=3))
    assert limiter.allow("203.0.113.1", 0.0)
    granted = [limiter.allow("203.0.113.1", 1000.0) for _ in range(5)]
    assert granted == [True, True, True, False, False]


def test_a_clock_stepping_back_refills_nothing() -> None:
    limiter = SourceRateLimiter(RateLimit(rate=10, burst=1))
    assert limiter.allow("203.0.113.1", 100.0)
    assert not limiter.allow("203.0.113.1", 50.0)
    assert not limiter.allow("203.0.113.1", 50.05)
    assert limiter.allow("203.0.113.1", 50.2)


def test_memory_is_bounded_and_a_busy_source_keeps_its_bucket() -> None:
    limiter = SourceRateLimiter(RateLimit(rate=0.001, burst=2, max_sources=100))
    victim = "198.51.100.7"
    assert limiter.allow(victim, 0.0) and limiter.allow(victim, 0.0)
    for i in range(10_000):
        limiter.allow(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 0.0)
        if i % 50 == 0:
            assert not limiter.allow(victim, 0.0)  # recently seen: never evicted
        assert len(limiter) <= 100


def test_public_sources_are_ips_loopback_sources_are_sockets() -> None:
    assert source_key(("203.0.113.1", 1000)) == source_key(("203.0.113.1", 2000))
    assert source_key(("127.0.0.1", 1000)) != source_key(("127.0.0.1", 2000))
    assert source_key(("::1", 1000)) == ("::1", 1000)
    assert source_key(("2001:db8::1", 1000)) == "2001:db8::1"
    assert source_key(("not an ip", 1)) == "not an ip"


@pytest.mark.parametrize("rate, burst, sources", [(0, 1, 1), (1, 0.5, 1), (1, 1, 0)])
def test_limits_must_be_positive(rate: float, burst: float, sources: int) -> None:
    with pytest.raises(ValueError):
        RateLimit(rate=rate, burst=burst, max_sources=sources)


@given(st.lists(st.tuples(st.integers(0, 5), st.floats(0, 1e6, allow_nan=False)), max_size=300))
@settings(deadline=None)
def test_never_more_than_burst_plus_rate_times_elapsed(events: list[tuple[int, float]]) -> None:
    limit = RateLimit(rate=2, burst=3, max_sources=8)  # room for every source: no eviction
    limiter = SourceRateLimiter(limit)
    granted: dict[int, list[float]] = {}
    now = 0.0
    for source, step_ms in events:
        now += step_ms / 1e3
        if limiter.allow(f"203.0.113.{source}", now):
            granted.setdefault(source, []).append(now)
    for times in granted.values():
        assert len(times) <= limit.burst + limit.rate * (times[-1] - times[0]) + 1e-6


pytestmark = pytest.mark.anyio


async def test_a_node_drops_requests_over_budget_and_serves_others() -> None:
    budget = 5
    async with DHTNode(ephemeral=False, rate_limit=RateLimit(rate=1e-3, burst=budget)) as node:
        flooder, other = await open_raw_peer(), await open_raw_peer()
        async with flooder.sock, other.sock:
            rids = [new_rid() for _ in range(20)]
            for rid in rids:
                await flooder.send(Request(Command.PING, rid, padding=16).encode(), node.address)
            answered = []
            with anyio.fail_after(5):
                while len(answered) < budget:
                    data, _ = await flooder.sock.receive()
                    reply = decode(data)
                    assert isinstance(reply, Response)
                    answered.append(reply.rid)
            assert answered == rids[:budget]
            # Sent after the flood, so it is read after all of it: by then 15 were refused.
            await other.request(node.address, Request(Command.PING, new_rid(), padding=16))
            assert node.throttled_requests == 15
            assert node.dropped_datagrams == 0
