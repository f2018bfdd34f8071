"""One hole-punch attempt's sockets, NAT analysis and probes (``hyperdht/lib/holepuncher.js``).

Both ends of a firewalled connection make one :class:`Holepuncher`. It takes a socket from
the pool, pings up to :data:`~.nat.MIN_SAMPLES` DHT nodes from it (skipping the 5 newest of
a table of 8 or more, as JS) and feeds their view of it to a :class:`~.nat.NatAnalysis`.
The rounds (in :mod:`.connect` and :mod:`.server`) exchange the verdicts; :meth:`punch`
then runs the strategy :func:`~.punch_policy.choose_strategy` picks, in background tasks
that never raise and stop at their JS limits.

A probe is one byte. The initiator (client) takes the first probe that reaches any of its
sockets as the punched path (``on_connect(pooled, address)``); the server only answers
probes, and learns the path from the client's first UDX packet on its socket. When the
attempt ends unconnected ``on_abort()`` runs once. Timing (``sleep``) is injectable.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, Protocol

import anyio

from ..errors import DHTError
from ..protocol.hyperdht_connect import Firewall
from .nat import NatAnalysis
from .punch_policy import (
    BIRTHDAY_SOCKETS,
    CONSISTENT_INTERVAL,
    CONSISTENT_TRIES,
    HOLEPUNCH_TTL,
    MAX_REOPENS,
    RANDOM_PROBE_INTERVAL,
    RANDOM_PROBE_TRIES,
    RandomPunchBudget,
    Strategy,
    choose_strategy,
    coerce,
    random_port,
    unstable,
)
from .rpc import Address, Reply
from .socket_pool import PooledSocket, SocketPool

__all__ = ("Holepuncher", "PunchHost", "RemoteAddress")

PROBE: Final = b"\x00"
#: Seconds one NAT-sampling PING may take (one send, as JS's ``retry: false``).
SAMPLE_TIMEOUT: Final = 2.0


class PunchHost(Protocol):
    firewalled: bool
    socket_pool: SocketPool
    punch_budget: RandomPunchBudget
    clock: Callable[[], float]

    @property
    def closed(self) -> bool: ...

    def start_task(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None: ...

    def sample_nodes(self) -> list[Address]: ...

    async def ping_from(self, to: Address, send: Callable[[bytes, Address], None]) -> Reply: ...


class RemoteAddress:
    __slots__ = ("host", "port", "verified")

    def __init__(self, host: str, port: int, verified: bool) -> None:
        self.host = host
        self.port = port
        self.verified = verified

    @property
    def address(self) -> Address:
        return (self.host, self.port)


class Holepuncher:
    """See the module docstring. ``await start()`` before use; ``destroy()`` always."""

    def __init__(
        self,
        host: PunchHost,
        initiator: bool,
        remote_firewall: int = Firewall.UNKNOWN,
        *,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.host = host
        self.initiator = initiator
        self.remote_firewall = remote_firewall
        self.remote_addresses: list[RemoteAddress] = []
        self.remote_punching = False
        self.nat = NatAnalysis(host.firewalled)
        self.punching = False
        self.connected = False
        self.destroyed = False
        self.randomized = False
        self.strategy: Strategy | None = None
        self.on_connect: Callable[[PooledSocket, Address], None] | None = None
        self.on_abort: Callable[[], None] | None = None
        #: The server's hook for the client's first UDX packet on one of our sockets.
        self.on_udx: Callable[[PooledSocket, bytes, Address], None] | None = None
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._holder: PooledSocket | None = None
        self._all: list[PooledSocket] = []
        self._analyzed = anyio.Event()
        self._punch_started = False
        self._punch_result: bool | None = None
        self._reopened = False

    @property
    def socket(self) -> PooledSocket:
        assert self._holder is not None
        return self._holder

    async def start(self) -> None:
        """Take the first socket and start sampling our NAT from it."""
        self._holder = self._add(await self.host.socket_pool.acquire())
        self._sample()

    def _add(self, ref: PooledSocket) -> PooledSocket:
        self._all.append(ref)
        ref.on_probe = self._on_probe
        ref.on_udx = self._on_udx
        return ref

    def _on_udx(self, ref: PooledSocket, data: bytes, address: Address) -> None:
        if self.on_udx is not None and not self.destroyed:
            self.on_udx(ref, data, address)

    # -- NAT sampling -----------------------------------------------------------------

    def _sample(self) -> None:
        nat, ref, analyzed = self.nat, self.socket, self._analyzed
        host = self.host

        async def run() -> None:
            try:
                for _ in range(2):  # one retry over nodes not yet asked, as autoSample
                    nodes = host.sample_nodes()
                    skip = 5 if len(nodes) >= 8 else 0
                    chosen: list[Address] = []
                    for node in nodes[skip:]:
                        if nat.sampled + len(chosen) >= nat.min_samples:
                            break
                        if node not in asked:
                            asked.add(node)
                            chosen.append(node)
                    async with anyio.create_task_group() as tg:
                        for node in chosen:
                            tg.start_soon(one, node)
                    if nat.decided or self.destroyed:
                        break
            finally:
                analyzed.set()

        asked: set[Address] = set()

        async def one(node: Address) -> None:
            with anyio.move_on_after(SAMPLE_TIMEOUT), contextlib.suppress(DHTError):
                reply = await host.ping_from(node, ref.send)
                nat.add((reply.to.host, reply.to.port), reply.from_.address)
                if nat.decided:
                    analyzed.set()

        self.host.start_task(run)

    async def analyze(self, allow_reopen: bool) -> bool:
        """Wait for the verdict; if it cannot punch, maybe retry on fresh sockets (up to
        :data:`~.punch_policy.MAX_REOPENS`). True when our side can punch."""
        await self._analyzed.wait()
        if not unstable(self.nat.firewall, self.remote_firewall):
            return True
        if not allow_reopen:
            return False
        if not self._reopened:
            self._reopened = True
            for _ in range(MAX_REOPENS):
                if self._done() or self.punching:
                    break
                if not unstable(self.nat.firewall, self.remote_firewall):
                    break
                await self._reset()
                await self._analyzed.wait()
        return coerce(self.nat.firewall) == Firewall.CONSISTENT

    async def _reset(self) -> None:
        prev = self._holder
        if prev is not None:
            self._all.remove(prev)
            prev.release()
        self.nat = NatAnalysis(self.host.firewalled)
        self._analyzed = anyio.Event()
        try:
            self._holder = self._add(await self.host.socket_pool.acquire())
        except DHTError:
            self._analyzed.set()
            return
        self._sample()

    def update_remote(
        self,
        punching: bool,
        firewall: int,
        addresses: tuple[tuple[str, int], ...] | None,
        verified_host: str | None,
    ) -> None:
        known = {a.host for a in self.remote_addresses if a.verified}
        self.remote_addresses = [
            RemoteAddress(h, p, h == verified_host or h in known) for h, p in addresses or ()
        ]
        self.remote_firewall = firewall
        self.remote_punching = punching

    # -- probes -------------------------------------------------------------------------

    def ping(self, address: Address, ref: PooledSocket | None = None) -> None:
        (ref or self.socket).send(PROBE, address)

    def open_session(self, address: Address, ref: PooledSocket | None = None) -> None:
        (ref or self.socket).send(PROBE, address, ttl=HOLEPUNCH_TTL)

    def _on_probe(self, ref: PooledSocket, address: Address) -> None:
        if self.destroyed:
            return
        if not self.initiator:
            ref.send(PROBE, address)  # the client's socket learns the path from this
            return
        if self.connected:
            return
        self.connected = True
        self.punching = False
        for other in self._all:
            if other is not ref:
                other.release()
        self._all = [ref]
        self._holder = ref
        self._end_random()
        if self.on_connect is not None:
            self.on_connect(ref, address)

    # -- punching -----------------------------------------------------------------------

    def _done(self) -> bool:
        return self.destroyed or self.connected

    async def punch(self) -> bool:
        """Start the punch (once; later calls return the first answer). True when a
        strategy runs; its probes go on in the background."""
        if self._punch_started:
            return bool(self._punch_result)
        self._punch_started = True
        self._punch_result = await self._punch()
        return self._punch_result

    async def _punch(self) -> bool:
        if self._done() or not self.remote_addresses:
            return False
        self.punching = True
        verified = next((a for a in self.remote_addresses if a.verified), None)
        strategy = choose_strategy(self.nat.firewall, self.remote_firewall, verified is not None)
        self.strategy = strategy
        if strategy == Strategy.CONSISTENT:
            self.host.start_task(self._consistent_probe)
            return True
        if verified is None or strategy == Strategy.NONE:
            self.punching = False
            return False
        self._begin_random()
        if strategy == Strategy.RANDOM_PROBES:
            target = verified.host

            async def probes() -> None:
                await self._random_probes(target)

            self.host.start_task(probes)
            return True
        await self._open_birthday_sockets(verified.address)
        if self.punching:
            address = verified.address

            async def keepalive() -> None:
                await self._keep_alive_random_nat(address)

            self.host.start_task(keepalive)
        return True

    async def _consistent_probe(self) -> None:
        if not self.initiator:
            await self._sleep(CONSISTENT_INTERVAL)  # the server's fast-open ping went first
        tries = 0
        while self.punching and tries < CONSISTENT_TRIES:
            tries += 1
            for address in list(self.remote_addresses):
                if not address.verified and tries & 3 != 0:
                    continue
                self.ping(address.address)
            if self.punching:
                await self._sleep(CONSISTENT_INTERVAL)
        self._auto_destroy()

    async def _random_probes(self, host: str) -> None:
        tries = RANDOM_PROBE_TRIES
        while self.punching and tries > 0:
            tries -= 1
            self.ping((host, random_port(self._rng)))
            if self.punching:
                await self._sleep(RANDOM_PROBE_INTERVAL)
        self._auto_destroy()

    async def _open_birthday_sockets(self, address: Address) -> None:
        while self.punching and len(self._all) < BIRTHDAY_SOCKETS:
            try:
                ref = self._add(await self.host.socket_pool.acquire())
            except DHTError:
                return  # the pool is full: punch with what we have
            self.open_session(address, ref)

    async def _keep_alive_random_nat(self, address: Address) -> None:
        await self._sleep(0.1)
        i, low_ttl_rounds, tries = 0, 1, RANDOM_PROBE_TRIES
        while self.punching and tries > 0 and self._all:
            tries -= 1
            if i >= len(self._all):
                i = 0
                if low_ttl_rounds > 0:
                    low_ttl_rounds -= 1
            ref = self._all[i]
            i += 1
            if low_ttl_rounds > 0:
                self.open_session(address, ref)
            else:
                self.ping(address, ref)
            if self.punching:
                await self._sleep(RANDOM_PROBE_INTERVAL)
        self._auto_destroy()

    def _auto_destroy(self) -> None:
        if not self.connected:
            self.destroy()

    def _begin_random(self) -> None:
        if not self.randomized:
            self.randomized = True
            self.host.punch_budget.running += 1

    def _end_random(self) -> None:
        if self.randomized:
            self.randomized = False
            budget = self.host.punch_budget
            budget.running -= 1
            budget.last = self.host.clock()

    def destroy(self) -> None:
        """Stop probing and release every socket but a connected one's."""
        if self.destroyed:
            return
        self.destroyed = True
        self.punching = False
        self._analyzed.set()
        for ref in self._all:
            if not (self.connected and ref is self._holder):
                ref.release()
        if not self.connected:
            self._all = []
            self._end_random()
            if self.on_abort is not None:
                abort, self.on_abort = self.on_abort, None
                abort()
