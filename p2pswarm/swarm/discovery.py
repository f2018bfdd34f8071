"""Per-topic discovery: announce and lookup rounds, the refresh timer, and sessions.

``swarm.join(topic)`` returns a :class:`PeerDiscovery`: one *session* on the topic's shared
:class:`TopicDiscovery`. The topic's mode is the OR of its live sessions' modes (server:
announce us; client: look others up and hand them to the swarm), so joining a topic again
with other options upgrades it, and destroying the last session leaves the topic.

A round runs the queries for the current mode:

* server mode: announce (and make the swarm findable by key), and only once the announce
  has completed, look up (if also a client). That order is what lets swarms that join a
  fresh topic in the same instant find each other at once: of any two announcers, the one
  whose announce completes later looks up after the other's record is stored (Hyperswarm
  looks up while announcing, and gets 0 connections for 10 minutes there);
* client mode: look up, handing each record found to the swarm (at most ``limit`` new
  peers per round);
* no longer a server but announced before: unannounce.

Rounds repeat every 10 minutes plus up to 2 minutes of jitter. If the timer fires more than
30 s late (the machine slept), the next round is rescheduled after the jitter only, so a
fleet waking together does not hit the DHT in one burst. DHT failures are logged and end
the round with ``False``; they never reach the application.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

import anyio

from ..errors import SwarmClosedError
from ..keys import KeyPair
from ..networks.discovery_backend import (
    FAILED_ROUND_RETRY,
    REFRESH_INTERVAL,
    REFRESH_JITTER,
    DiscoveryBackend,
)
from ..peer_record import PeerRecord

__all__ = (
    "DELAY_GRACE_PERIOD",
    "PeerDiscovery",
    "RefreshSchedule",
    "TopicDiscovery",
)

logger = logging.getLogger("p2pswarm.discovery")

#: A timer that fires this much later than asked means the machine slept.
DELAY_GRACE_PERIOD: Final = 30.0
#: A DHT node answers a lookup with at most this many records of a topic, a random sample
#: when it holds more; then a second lookup can find peers the first missed.
RECORDS_PER_REPLY: Final = 20
#: Lookups per round on a busy topic (more only while each finds new peers).
MAX_LOOKUPS_PER_ROUND: Final = 3
#: Bound on the unannounce sent when a topic is left, so leaving never hangs.
UNANNOUNCE_TIMEOUT: Final = 5.0


class RefreshSchedule:
    """When the next round is due (pure: the caller passes the time in)."""

    __slots__ = ("_failures", "_rng", "deadline", "grace", "interval", "jitter")

    def __init__(
        self,
        interval: float = REFRESH_INTERVAL,
        jitter: float = REFRESH_JITTER,
        grace: float = DELAY_GRACE_PERIOD,
        rng: random.Random | None = None,
    ) -> None:
        self.interval = interval
        self.jitter = jitter
        self.grace = grace
        self._rng = rng or random.Random()
        self._failures = 0
        self.deadline = math.inf

    def round_finished(self, now: float, ok: bool = True) -> float:
        """A round just ended: the next is due one interval (plus jitter) from now, or, after
        a failure, soon (1 s, 2 s, 4 s, ... plus up to 50 % jitter, capped at the interval)."""
        if ok:
            self._failures = 0
            self.deadline = now + self.interval + self._rng.uniform(0, self.jitter)
        else:
            delay = min(FAILED_ROUND_RETRY * 2.0**self._failures, self.interval)
            self._failures += 1
            self.deadline = now + delay * (1 + self._rng.uniform(0, 0.5))
        return self.deadline

    def timer_fired(self, now: float) -> bool:
        """The timer fired at ``now``: True to refresh now, False when it fired so late
        that the machine must have slept (then a refresh is rescheduled after jitter)."""
        late_by = now - self.deadline
        if late_by > self.grace:
            self.deadline = now + self._rng.uniform(0, self.jitter)
            return False
        self.deadline = math.inf
        return True

    def cancel(self) -> None:
        """No timer until the next :meth:`round_finished`."""
        self.deadline = math.inf


class SessionOwner(Protocol):
    """The swarm, as a session sees it."""

    async def leave(self, topic: bytes) -> None: ...


class DiscoveryHost(Protocol):
    """What a topic discovery needs from its swarm."""

    @property
    def key_pair(self) -> KeyPair: ...

    @property
    def port(self) -> int: ...

    @property
    def dht(self) -> DiscoveryBackend: ...

    async def listen(self) -> None: ...

    def _handle_peer(self, record: PeerRecord, topic: bytes) -> bool: ...


@dataclass(eq=False)
class _Round:
    """One refresh round; waiters follow ``replaced_by`` when a mode change restarts it."""

    done: anyio.Event = field(default_factory=anyio.Event)
    ok: bool = False
    scope: anyio.CancelScope | None = None
    replaced_by: _Round | None = None

    async def wait(self) -> bool:
        current = self
        while True:
            await current.done.wait()
            if current.replaced_by is None:
                return current.ok
            current = current.replaced_by


class TopicDiscovery:
    """The shared discovery state of one topic; ``swarm.status(topic)`` returns it.

    ``is_client`` / ``is_server`` are the OR of the live sessions' modes.
    """

    def __init__(
        self,
        host: DiscoveryHost,
        topic: bytes,
        *,
        wait_for: anyio.Event | None = None,
        schedule: RefreshSchedule | None = None,
    ) -> None:
        self.topic = topic
        self.destroyed = False
        self.suspended = False
        self._host = host
        self._sessions: list[PeerDiscovery] = []
        self._announced = False
        self._wait_for = wait_for
        self._schedule = schedule or RefreshSchedule()
        self._pending: _Round | None = None
        self._current: _Round | None = None
        self._current_mode: tuple[bool, bool] | None = None
        self._wakeup = anyio.Event()
        self._loop_scope = anyio.CancelScope()
        self._destroyed_event = anyio.Event()
        self._destroy_started = False

    # -- mode -------------------------------------------------------------------------------

    @property
    def is_client(self) -> bool:
        """True while some live session looks peers up."""
        return any(s.is_client for s in self._sessions)

    @property
    def is_server(self) -> bool:
        """True while some live session announces us."""
        return any(s.is_server for s in self._sessions)

    @property
    def limit(self) -> int | None:
        """The most new peers handed to the swarm per round (None: no limit)."""
        limits = [s.limit for s in self._sessions if s.limit is not None]
        return min(limits) if limits else None

    @property
    def sessions(self) -> tuple[PeerDiscovery, ...]:
        """The live sessions, in join order."""
        return tuple(self._sessions)

    def _mode(self) -> tuple[bool, bool]:
        return (self.is_client, self.is_server)

    # -- sessions ---------------------------------------------------------------------------

    def session(
        self, swarm: SessionOwner, *, client: bool, server: bool, limit: int | None
    ) -> PeerDiscovery:
        """Add a session; a new mode starts a fresh round."""
        session = PeerDiscovery(swarm, self, client=client, server=server, limit=limit)
        self._sessions.append(session)
        self.request_refresh()
        return session

    async def _session_destroyed(self, session: PeerDiscovery) -> None:
        if session in self._sessions:
            self._sessions.remove(session)
        if not self._sessions:
            await session.swarm.leave(self.topic)
        elif self._current_mode != self._mode() and not self.destroyed:
            await self.request_refresh().wait()

    # -- rounds -----------------------------------------------------------------------------

    def request_refresh(self) -> _Round:
        """Ask for a round. An identical round already pending or running is shared; a
        running round for another mode is cancelled and replaced."""
        if self.destroyed:
            finished = _Round()
            finished.done.set()
            return finished
        if self._pending is not None:
            return self._pending
        new = _Round()
        current = self._current
        if current is not None:
            if self._current_mode == self._mode():
                return current
            current.replaced_by = new
            if current.scope is not None:
                current.scope.cancel()
        self._pending = new
        self._wakeup.set()
        return new

    async def flushed(self) -> bool:
        """Wait for the current round (announced in server mode, looked up in client mode).

        True when it completed; False when it failed or the topic was left meanwhile.
        Returns at once (True) when no round is pending.
        """
        target = self._pending or self._current
        if target is None:
            return not self.destroyed
        return await target.wait()

    async def refresh(self) -> bool:
        """Run a round now (or join the one in flight) and wait for it."""
        return await self.request_refresh().wait()

    async def run(self) -> None:
        """The topic's loop: runs rounds on request and on the refresh timer."""
        with self._loop_scope:
            if self._wait_for is not None:
                await self._wait_for.wait()
            while not self.destroyed:
                if self._pending is None or self.suspended:
                    delay = self._schedule.deadline - anyio.current_time()
                    with anyio.move_on_after(max(delay, 0)):
                        await self._wakeup.wait()
                    self._wakeup = anyio.Event()
                    now = anyio.current_time()
                    due = self._pending is None and not self.suspended
                    if due and self._schedule.deadline <= now and self._schedule.timer_fired(now):
                        self._pending = _Round()
                    continue
                round_, self._pending = self._pending, None
                self._current = round_
                self._current_mode = self._mode()
                ok = False
                with anyio.CancelScope() as round_.scope:
                    ok = await self._run_round(round_)
                round_.ok = ok and not round_.scope.cancelled_caught
                self._current = None
                round_.done.set()
                if not round_.scope.cancelled_caught:
                    self._schedule.round_finished(anyio.current_time(), round_.ok)

    async def _run_round(self, round_: _Round) -> bool:
        client, server = self._mode()
        failures: list[BaseException] = []
        host = self._host
        handed = [0]
        limit = self.limit

        seen: set[bytes] = set()

        async def lookup_once() -> int:
            """One lookup; returns how many keys it found that this round had not seen."""
            fresh = 0
            async with host.dht.lookup(self.topic) as results:
                async for record in results:
                    if limit is not None and handed[0] >= limit:
                        break
                    if record.public_key in seen:
                        continue
                    seen.add(record.public_key)
                    fresh += 1
                    if record.public_key == host.key_pair.public_key:
                        continue
                    if host._handle_peer(record, self.topic):
                        handed[0] += 1
            return fresh

        async def lookup() -> None:
            try:
                for _ in range(MAX_LOOKUPS_PER_ROUND):
                    fresh = await lookup_once()
                    # A busy topic: nodes answered with random samples, so another lookup
                    # can find peers this one missed. Stop once one finds nothing new.
                    if fresh == 0 or len(seen) < RECORDS_PER_REPLY:
                        break
            except Exception as exc:
                failures.append(exc)
                logger.debug("lookup of %s failed: %r", self.topic.hex()[:16], exc)

        async def guarded(operation: Callable[[], Awaitable[None]], what: str) -> None:
            try:
                await operation()
            except Exception as exc:
                failures.append(exc)
                logger.debug("%s of %s failed: %r", what, self.topic.hex()[:16], exc)

        async def announce() -> None:
            await host.dht.announce(self.topic, host.key_pair, host.port)
            self._announced = True

        async def announce_then_lookup() -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(guarded, host.listen, "listen")
                tg.start_soon(guarded, announce, "announce")
            if client:
                # Looked up only once our announce completed: see the module docstring.
                await lookup()

        async def unannounce() -> None:
            try:
                await host.dht.unannounce(self.topic, host.key_pair)
                self._announced = False
            except Exception as exc:
                failures.append(exc)
                logger.debug("unannounce of %s failed: %r", self.topic.hex()[:16], exc)

        async with anyio.create_task_group() as tg:
            if server:
                tg.start_soon(announce_then_lookup)
            else:
                if self._announced:
                    tg.start_soon(unannounce)
                if client:
                    tg.start_soon(lookup)
        return not failures

    # -- lifecycle --------------------------------------------------------------------------

    def _abort_rounds(self) -> None:
        for round_ in (self._current, self._pending):
            if round_ is not None:
                if round_.scope is not None:
                    round_.scope.cancel()
                round_.done.set()
        self._pending = None
        self._schedule.cancel()

    async def _unannounce_quietly(self) -> None:
        if not self._announced:
            return
        self._announced = False
        with anyio.move_on_after(UNANNOUNCE_TIMEOUT):
            try:
                await self._host.dht.unannounce(self.topic, self._host.key_pair)
            except Exception as exc:
                logger.debug("unannounce of %s failed: %r", self.topic.hex()[:16], exc)

    async def suspend(self) -> None:
        """Stop rounds and withdraw our announce until :meth:`resume`."""
        self.suspended = True
        self._abort_rounds()
        await self._unannounce_quietly()

    def resume(self) -> None:
        """Start a fresh round (and the timer) after :meth:`suspend`."""
        if not self.suspended:
            return
        self.suspended = False
        self.request_refresh()
        self._wakeup.set()  # a round requested while suspended is pending: run it now

    async def destroy(self, *, unannounce: bool = True) -> None:
        """Stop the loop and (unless told not to) unannounce; idempotent."""
        if self._destroy_started:
            await self._destroyed_event.wait()
            return
        self._destroy_started = True
        self.destroyed = True
        self._abort_rounds()
        self._loop_scope.cancel()
        for session in self._sessions:
            session.destroyed = True
        self._sessions.clear()
        try:
            if unannounce:
                with anyio.CancelScope(shield=True):
                    await self._unannounce_quietly()
        finally:
            self._destroyed_event.set()

    def __repr__(self) -> str:
        mode = "+".join(
            m for m, on in (("client", self.is_client), ("server", self.is_server)) if on
        )
        sessions = len(self._sessions)
        return f"<TopicDiscovery {self.topic.hex()[:16]}… {mode or 'idle'} sessions={sessions}>"


class PeerDiscovery:
    """A session on a topic, returned by ``swarm.join(topic)``.

    Several sessions may share one topic; the topic is announced while any session is a
    server and looked up while any is a client. ``destroy()`` ends this session only; the
    last one leaves the topic.
    """

    def __init__(
        self,
        swarm: SessionOwner,
        discovery: TopicDiscovery,
        *,
        client: bool,
        server: bool,
        limit: int | None,
    ) -> None:
        self.swarm = swarm
        self.discovery = discovery
        self.is_client = client
        self.is_server = server
        self.limit = limit
        self.destroyed = False

    @property
    def topic(self) -> bytes:
        """The 32-byte topic."""
        return self.discovery.topic

    async def flushed(self) -> bool:
        """Wait until the current round is done: announced (server) and looked up (client).

        Peers found are then queued in the swarm; ``swarm.flush()`` also waits for their
        dials. Not a readiness gate for the remote side.
        """
        if self.destroyed:
            return False
        return await self.discovery.flushed()

    async def refresh(
        self, *, client: bool | None = None, server: bool | None = None, limit: int | None = None
    ) -> bool:
        """Run a round now, optionally changing this session's mode, and wait for it.

        This is how a client finds a server that announced after the last lookup. ``limit``
        replaces the session's limit (None: no limit). Raises ``ValueError`` when both modes
        would be off and :class:`~p2pswarm.errors.SwarmClosedError` after ``destroy()``.
        """
        if self.destroyed:
            raise SwarmClosedError("this discovery session was destroyed")
        new_client = self.is_client if client is None else bool(client)
        new_server = self.is_server if server is None else bool(server)
        if not (new_client or new_server):
            raise ValueError("a discovery session needs client=True or server=True")
        self.is_client, self.is_server = new_client, new_server
        self.limit = _check_limit(limit)
        return await self.discovery.refresh()

    async def destroy(self) -> None:
        """End this session; the last session on a topic leaves it (unannounces)."""
        if self.destroyed:
            return
        self.destroyed = True
        await self.discovery._session_destroyed(self)

    def __repr__(self) -> str:
        mode = "+".join(
            m for m, on in (("client", self.is_client), ("server", self.is_server)) if on
        )
        state = " destroyed" if self.destroyed else ""
        return f"<PeerDiscovery {self.topic.hex()[:16]}… {mode}{state}>"


def _check_limit(limit: object) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int or None, got {type(limit).__name__}")
    if limit < 0:
        raise ValueError("limit must be >= 0")
    return limit
