"""DHTRPCNode: a dht-rpc node (``dht-rpc/index.js``) that JS dht-rpc and HyperDHT nodes route
through, and that HyperDHT's commands extend.

:class:`~.core.NodeCore` talks (datagrams, the internal commands, the routing table); this
adds joining and staying: the bootstrap walk (FIND_NODE towards our own id), dht-rpc's
ephemeral/persistent rule, periodic maintenance, and iterative queries.

**Ephemeral and persistent.** A node starts ephemeral (no id on the wire, so nobody adds
it to a routing table). It becomes persistent only when others can reach it: a stable
sampled public address (:mod:`.nat`) and the firewall test, PING_NAT from up to 5 nodes
asking them to answer on our port, with at least 3 of 5 (1 if fewer) answers agreeing that
we are at host:port with the port we bound. Then its id is H(public address) and the table
is rebuilt around it. ``ephemeral=None`` (adaptive, the default) tries after ~20 min of
stability; ``ephemeral=False`` at bootstrap; ``ephemeral=True`` never.
:meth:`DHTRPCNode.bootstrapper` is persistent from the start (a network's first node).

Like JS, a node that owns its I/O has two sockets: the server socket (the configured port)
and a client socket on a random port that requests leave from while firewalled, so a
PING_NAT answer that reaches the server socket proves that strangers can reach it. A node
fed by someone else's single socket (``send=`` without ``client_send=``) cannot tell
"reachable by anyone" from "reachable by nodes we already wrote to" behind an
address-restricted NAT; on public addresses and loopback the difference does not arise.

**Extending it** (HyperDHT): override :meth:`~.core.NodeCore.on_request` (or pass
``request_handler=``) for non-internal commands; send with :meth:`~.core.NodeCore.request`
and :meth:`DHTRPCNode.query` (``commit=`` for the mutating follow-up with each closest
reply's token).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Final

import anyio

from ..errors import DHTError
from ..protocol.dht_rpc import InternalCommand, encode_ipv4, node_id
from .core import (
    MORE_STABLE_TICKS,
    OLD_NODE,
    RECENT_NODE,
    REFRESH_TICKS,
    SLEEPING_INTERVAL,
    TICK_INTERVAL,
    NodeCore,
)
from .iterative import Commit, Query
from .nat import NatSampler
from .routing import RoutingNode, RoutingTable
from .rpc import Address, Peer, Reply

__all__ = ("Commit", "DHTRPCNode", "Query")

logger = logging.getLogger(__name__)

#: DOWN_HINTs sent per tick at most (JS ``downHintsRateLimit``).
DOWN_HINTS_PER_TICK: Final = 50
#: Full rows being re-pinged at once at most.
MAX_REPINGING: Final = 3

#: Nodes asked for the firewall test, and the answers needed from 5 of them.
FIREWALL_PROBES: Final = 5
FIREWALL_QUORUM: Final = 3


class DHTRPCNode(NodeCore):
    """One dht-rpc node; ``async with DHTRPCNode(bootstrap=[(host, port)]) as node:``.

    Constructor options (all keyword): ``bootstrap`` [(host, port)], ``host`` ("0.0.0.0"),
    ``port`` (0; a taken port tries the next 5, then any, unless ``any_port=False``),
    ``ephemeral`` (None adaptive / True / False), ``firewalled`` (True), ``k`` (20),
    ``concurrency`` (10), ``max_window`` (80), ``max_ping_delay`` (10 s), ``limits``
    (:class:`~.limits.Limits`, None for none), ``quick_firewall``, ``request_handler``,
    ``node_filter``, and ``send`` + ``local_address`` to run on someone else's socket.
    """

    @classmethod
    def bootstrapper(cls, port: int, host: str, **options: object) -> DHTRPCNode:
        """A network's first node: persistent at once at (host, port) (``DHT.bootstrapper``);
        ``host`` is the IPv4 address others reach it at."""
        if not port or host in ("0.0.0.0", "::"):
            raise ValueError("a bootstrapper needs its public IPv4 host and a port")
        options.setdefault("bootstrap", ())
        options.setdefault("host", host)
        node = cls(port=port, ephemeral=False, firewalled=False, any_port=False, **options)  # type: ignore[arg-type]
        node._nat.add(host, port)
        node._become_persistent(node_id(host, port))
        return node

    def _start_background(self) -> None:
        assert self._tg is not None
        self._tg.start_soon(self._bootstrap)
        self._tg.start_soon(self._tick_loop)

    # -- joining --------------------------------------------------------------------------

    async def _bootstrap(self) -> None:
        """The join walk; while firewalled, a quick PING_NAT to the first node that answers
        decides whether the full firewall test runs now (``index.js _bootstrap``)."""
        await self.resolve_bootstrap()
        first = self.firewalled and self._quick_firewall and not self._force_persistent
        test_nat = False
        only_firewall = not self._force_persistent

        async def ping_nat(peer: Peer) -> None:
            nonlocal test_nat
            try:
                await self.request(
                    peer.address,
                    InternalCommand.PING_NAT,
                    internal=True,
                    value=self.address[1].to_bytes(2, "little"),
                )
                test_nat = True
            except DHTError:
                pass

        def on_reply(reply: Reply) -> None:
            nonlocal first
            if not first:
                return
            first = False
            self.start_task(lambda: ping_nat(reply.from_))

        try:
            for _ in range(2):
                try:
                    await self._background_query(self.table.id, on_reply).finished()
                except DHTError as exc:
                    logger.debug("bootstrap walk failed: %s", exc)
                if self.bootstrapped or (not test_nat and not self._force_persistent):
                    break
                if not await self._update_network_state(only_firewall):
                    break
        finally:
            self.bootstrapped = True
            if self._bootstrapped_event is not None:
                self._bootstrapped_event.set()

    def _become_persistent(self, id: bytes) -> bool:
        """Take ``id`` (H of our public address), rebuilding the table, and go persistent."""
        self.firewalled = False
        self.ephemeral = False
        changed = self._adopt_id(id)
        self._notify()
        return changed

    def _adopt_id(self, id: bytes) -> bool:
        """Rebuild the routing table around ``id`` (JS does it once the firewall test
        passes, even while the node stays ephemeral: the id is where it will live);
        True if the id changed."""
        if id == self.table.id:
            return False
        nodes = self.table.nodes()
        self.table = RoutingTable(id, self.table.k, self._on_full_row)
        for node in nodes:
            if node.id == id:
                continue
            if not self.table.add(node):
                self.recent.remove(node)
        return True

    async def _update_network_state(self, only_firewall: bool = False) -> bool:
        """``index.js _updateNetworkState``: the firewall test, then maybe persistence."""
        if not self.ephemeral:
            return False
        if only_firewall and not self.firewalled:
            return False
        host, port = self._nat.host, self._nat.port
        if not only_firewall:
            self._stable_ticks = MORE_STABLE_TICKS
            self._last_host = host
        if host is None or port == 0:
            return False
        sampler = NatSampler() if self.firewalled else self._nat
        if self.firewalled and await self._check_if_firewalled(sampler):
            return False
        self.firewalled = False
        if not self.ephemeral or host != self._nat.host or port != self._nat.port:
            return False
        if sampler.host != host or sampler.port == 0 or sampler.host is None:
            return False
        if sampler is not self._nat:
            self._non_persistent_samples = []
            self._nat = sampler  # the server socket's samples from now on
        id = node_id(sampler.host, sampler.port)
        if only_firewall:
            changed = self._adopt_id(id)
            self._notify()
        else:
            changed = self._become_persistent(id)
        if changed and self.bootstrapped:
            self.start_task(self.refresh)  # our place in the network moved
        return True

    async def _check_if_firewalled(self, sampler: NatSampler) -> bool:
        """Ask up to 5 recent nodes (bootstrap nodes if fewer) to PING_NAT us back on our
        port; firewalled unless enough answer and agree on our host and bound port."""
        nodes: list[Address] = self.to_array(FIREWALL_PROBES)
        for address in self._bootstrap_addresses:
            if len(nodes) >= FIREWALL_PROBES:
                break
            if address not in nodes:
                nodes.append(address)
        if not nodes:
            return True
        local_port = self.address[1]
        value = local_port.to_bytes(2, "little")
        replies: list[Reply] = []

        async def probe(address: Address) -> None:
            with contextlib.suppress(DHTError):
                replies.append(
                    await self.request(
                        address, InternalCommand.PING_NAT, internal=True, value=value
                    )
                )

        hosts: set[str] = set()
        self._server_hosts = hosts  # who reached our server socket meanwhile
        try:
            async with anyio.create_task_group() as tg:
                for address in nodes:
                    tg.start_soon(probe, address)
        finally:
            self._server_hosts = None
        count = 0
        for reply in replies:
            if reply.from_.host in hosts:
                count += 1
                sampler.add(reply.to.host, reply.to.port)
        if count < (FIREWALL_QUORUM if len(nodes) >= FIREWALL_PROBES else 1):
            return True
        if sampler.host is None or self._nat.host != sampler.host:
            return True
        return sampler.port == 0 or sampler.port != local_port

    # -- maintenance ----------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            await anyio.sleep(TICK_INTERVAL)
            self._on_tick()

    def _on_tick(self) -> None:
        now = self.clock()
        if now - self._last_tick > SLEEPING_INTERVAL:
            self._on_wakeup()
        else:
            self._tick += 1
        self._last_tick = now
        self._down_hints_sent = 0
        if not self.bootstrapped:
            return
        if self.adaptive and self.ephemeral:
            self._stable_ticks -= 1
            if self._stable_ticks <= 0:
                if self._last_host == self._nat.host:
                    self._stable_ticks = MORE_STABLE_TICKS
                else:
                    self.start_task(self._update_network_state_quietly)
        if self._tick & 7 == 0:
            self._ping_some()
        self._refresh_ticks -= 1
        if (self._tick & 63 == 0 and len(self.recent) < self.table.k) or self._refresh_ticks <= 0:
            self.start_task(self.refresh)

    async def _update_network_state_quietly(self) -> None:
        await self._update_network_state()

    def _on_wakeup(self) -> None:
        """A long gap between ticks (a laptop slept): everything looks old, recheck soon;
        an adaptive node goes back to ephemeral until it proves itself again."""
        self._tick += 2 * 360
        self._tick += 8 - (self._tick & 7) - 2
        self._stable_ticks = MORE_STABLE_TICKS
        self._refresh_ticks = 1
        self._last_host = None
        if self.adaptive and not self.ephemeral:
            self.ephemeral = True

    def _ping_some(self) -> None:
        """Ping the least recently heard nodes (up to 5, 3 when busy, 2 if they are fresh)."""
        count = 3 if len(self._rpc.inflight) > 2 else 5
        oldest = self.recent.oldest(count)
        if not oldest:
            self.start_task(self.refresh)
            return
        if self._tick - oldest[0].pinged < 12:
            oldest = oldest[:2]
        for node in oldest:
            if node.pinged != self._tick:
                self._check(node)

    # -- routing upkeep -------------------------------------------------------------------

    def _on_full_row(self, new: RoutingNode, row: list[RoutingNode]) -> None:
        """A full row: ping its least recently pinged node, swap it out if it is gone."""
        if not self.bootstrapped or self._repinging >= MAX_REPINGING:
            return
        oldest: RoutingNode | None = None
        for node in row:
            if node.pinged == self._tick:
                continue
            if (
                oldest is None
                or oldest.pinged > node.pinged
                or (oldest.pinged == node.pinged and oldest.added > node.added)
            ):
                oldest = node
        if oldest is None:
            return
        if self._tick - oldest.pinged < RECENT_NODE and self._tick - oldest.added > OLD_NODE:
            return
        self._reping_and_swap(new, oldest)

    def _reping_and_swap(self, new: RoutingNode, old: RoutingNode) -> None:
        last_seen = old.seen
        old.pinged = self._tick
        self._repinging += 1

        async def reping() -> None:
            swap = True
            try:
                await self.ping(old.address)
                swap = old.seen <= last_seen
            except DHTError:
                pass
            finally:
                self._repinging -= 1
            if swap:
                self._remove_node(old)
                self._add_node(new)
            self._notify()  # the row's fate is decided either way

        try:
            self.start_task(reping)
        except DHTError:
            self._repinging -= 1

    def _check(self, node: RoutingNode) -> None:
        """Ping ``node``; remove it if it does not answer (or answered nothing new)."""
        node.pinged = self._tick
        last_seen = node.seen
        self._checks += 1

        async def check() -> None:
            try:
                await self.ping(node.address)
                if node.seen <= last_seen:
                    self._remove_node(node)
            except DHTError:
                self._remove_node(node)
            finally:
                self._checks -= 1

        try:
            self.start_task(check)
        except DHTError:
            self._checks -= 1

    # -- client commands ------------------------------------------------------------------

    async def delayed_ping(self, to: Address, delay: float) -> Reply:
        """PING answered after ``delay`` seconds (at most the responder's max, 10 s)."""
        if not 0 <= delay <= self.max_ping_delay:
            raise ValueError(f"delay must be within 0..{self.max_ping_delay} s")
        value = int(delay * 1000).to_bytes(4, "little")
        return await self.request(
            to, InternalCommand.DELAYED_PING, internal=True, value=value, resend_after=delay + 1.0
        )

    def send_down_hint(self, referrer: Address, down: Address) -> None:
        """Tell ``referrer`` that the node it named is down (at most 50 per tick)."""
        if self._down_hints_sent >= DOWN_HINTS_PER_TICK:
            return
        self._down_hints_sent += 1
        value = encode_ipv4(*down)

        async def hint() -> None:
            with contextlib.suppress(DHTError):
                await self.request(referrer, InternalCommand.DOWN_HINT, internal=True, value=value)

        with contextlib.suppress(DHTError):
            self.start_task(hint)

    # -- queries --------------------------------------------------------------------------

    def query(
        self,
        target: bytes,
        command: int,
        *,
        value: bytes | None = None,
        internal: bool = False,
        commit: Commit | None = None,
        nodes: Sequence[Address] | None = None,
        concurrency: int | None = None,
        retries: int = 5,
        on_reply: Callable[[Reply], None] | None = None,
    ) -> Query:
        """An iterative query towards ``target`` (see :mod:`.iterative`); iterate it or
        ``await q.finished()``. ``nodes`` seeds it instead of the table (e.g. a previous
        query's ``closest_nodes``); ``retries`` is per visited node (JS: 5)."""
        if self._closed:
            raise DHTError("the node is closed")
        self._refresh_ticks = REFRESH_TICKS
        return Query(
            self,
            target,
            command,
            internal=internal,
            value=value,
            commit=commit,
            nodes=nodes,
            concurrency=concurrency,
            retries=retries,
            on_reply=on_reply,
        )

    def find_node(self, target: bytes, **options: object) -> Query:
        return self.query(target, InternalCommand.FIND_NODE, internal=True, **options)  # type: ignore[arg-type]

    def _background_query(
        self, target: bytes, on_reply: Callable[[Reply], None] | None = None
    ) -> Query:
        background = min(self.concurrency, max(2, self.concurrency // 8))
        q = self.query(
            target,
            InternalCommand.FIND_NODE,
            internal=True,
            concurrency=background,
            on_reply=on_reply,
        )
        return q

    async def refresh(self) -> None:
        """Walk towards a random known node (or our own id): fresh nodes in, dead ones out."""
        node = self.table.random()
        try:
            await self._background_query(node.id if node else self.table.id).finished()
        except DHTError as exc:
            logger.debug("refresh failed: %s", exc)
