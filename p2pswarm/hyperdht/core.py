"""NodeCore: the half of a dht-rpc node that talks: datagrams in and out, serving the internal
commands, the routing table and who may enter it (``dht-rpc/index.js`` ``_onrequest``,
``_addNodeFromNetwork``, ``_onfullrow``, ``_check``).

:class:`~.node.NodeCore` adds the half that joins and stays in the network (bootstrap,
NAT and persistence, periodic maintenance, queries); the split keeps each module about one
thing.

**I/O**: by default the node binds its own UDP socket (:mod:`.io`). Given ``send=`` (and
``local_address=``) it binds nothing and is fed with :meth:`NodeCore.datagram_received`
by whoever owns the socket (a UDX socket that demultiplexes).

**Hostile input** (carried over from our own DHT): requests are rate limited per source
before decoding, replies to senders that never proved their address come out of byte
budgets (:mod:`.limits`), a *requester* enters the routing table only after it answered a
ping of ours (a reply proves the address, a request does not: its source may be forged),
only nodes whose id is H(their address) enter at all, and decoding is strict
(:mod:`p2pswarm.protocol.dht_rpc`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any, Final, Self

import anyio
import anyio.abc
import anyio.lowlevel

from ..errors import DHTError, DHTRPCDecodeError
from ..protocol.compact import IPv4Address
from ..protocol.dht_rpc import (
    REQUEST_ID,
    RESPONSE_ID,
    ErrorCode,
    InternalCommand,
    decode_request,
    decode_response,
    encode_ipv4,
    node_id,
    peek_tid,
)
from .congestion import DEFAULT_MAX_WINDOW, DRAIN_INTERVAL
from .io import UDPEndpoint
from .limits import DEFAULT_LIMITS, Gate, Limits
from .nat import NatSampler
from .routing import DEFAULT_K, RecentNodes, RoutingNode, RoutingTable
from .rpc import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    Address,
    IncomingRequest,
    Peer,
    Reply,
    Send,
    Transactions,
)

__all__ = ("NodeCore", "RequestHandler")

logger = logging.getLogger(__name__)

#: Answers a non-internal request; False means "not my command" (UNKNOWN_COMMAND).
RequestHandler = Callable[[IncomingRequest], bool]

TICK_INTERVAL: Final = 5.0
SLEEPING_INTERVAL: Final = 3 * TICK_INTERVAL
STABLE_TICKS: Final = 240
MORE_STABLE_TICKS: Final = 3 * STABLE_TICKS
REFRESH_TICKS: Final = 60
RECENT_NODE: Final = 12
OLD_NODE: Final = 360
DEFAULT_CONCURRENCY: Final = 10
MAX_PING_DELAY: Final = 10.0
MAX_CHECKS: Final = 10
#: Requesters being pinged before they may enter the routing table, at most.
MAX_VERIFYING: Final = 64
#: DELAYED_PING replies waiting at most (each is a sleeping task).
MAX_DELAYED: Final = 256


#: The one command a hole puncher's socket serves (hyperdht's PEER_HOLEPUNCH).
FOREIGN_COMMAND: Final = 1


class NodeCore:
    """Serving, routing and the I/O edge of a node; see :class:`~.node.NodeCore`."""

    def __init__(
        self,
        *,
        bootstrap: Sequence[Address] = (),
        host: str = "0.0.0.0",
        port: int = 0,
        ephemeral: bool | None = None,
        firewalled: bool = True,
        any_port: bool = True,
        k: int = DEFAULT_K,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_window: int = DEFAULT_MAX_WINDOW,
        max_ping_delay: float = MAX_PING_DELAY,
        limits: Limits | None = DEFAULT_LIMITS,
        quick_firewall: bool = True,
        request_handler: RequestHandler | None = None,
        node_filter: Callable[[IPv4Address], bool] | None = None,
        send: Send | None = None,
        local_address: Address | None = None,
        client_send: Send | None = None,
        client_address: Address | None = None,
        two_sockets: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (send is None) != (local_address is None):
            raise ValueError("send and local_address go together (an external socket)")
        if (client_send is None) != (client_address is None) or (client_send and not send):
            raise ValueError("client_send and client_address go together, with send")
        #: As given: IPv4 literals, host names, or JS's "ip@name" (the IP, the name as fallback).
        self.bootstrap_nodes = [(h, int(p)) for h, p in bootstrap]
        self._bootstrap_addresses: list[Address] = [
            (h, p) for h, p in self.bootstrap_nodes if _is_ipv4(h)
        ]
        self.concurrency = concurrency
        self.max_ping_delay = max_ping_delay
        self.request_handler = request_handler
        self.node_filter = node_filter
        self.clock = clock
        self.ephemeral = True
        self.firewalled = firewalled
        self.adaptive = ephemeral is None
        self.bootstrapped = False
        self._force_persistent = ephemeral is False
        self._quick_firewall = quick_firewall
        self._host, self._port, self._any_port = host, port, any_port
        self._endpoint: UDPEndpoint | None = None
        self._client_endpoint: UDPEndpoint | None = None
        self._two_sockets = two_sockets
        self._send: Send = send if send is not None else self._endpoint_send
        self._client_send: Send | None = client_send
        self._local_address = local_address
        self._client_address = client_address
        self._server_hosts: set[str] | None = None
        self.table = RoutingTable(os.urandom(32), k, self._on_full_row)
        self.recent = RecentNodes()
        self._nat = NatSampler()
        self._rpc = Transactions(
            self._send_request,
            wire_id=self._wire_id,
            closest=self._closest_addresses,
            max_window=max_window,
            send_reply=self._send_reply,
            relay=self._relay,
        )
        self._gate = Gate(limits) if limits is not None else None
        self._verifying: set[Address] = set()
        self._non_persistent_samples: list[Address] = []
        self._tick = REFRESH_TICKS * 2
        self._refresh_ticks = REFRESH_TICKS
        self._stable_ticks = STABLE_TICKS if self.adaptive else 0
        self._last_tick = clock()
        self._last_host: str | None = None
        self._repinging = 0
        self._checks = 0
        self._delayed = 0
        self._down_hints_sent = 0
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False
        self._bootstrapped_event: anyio.Event | None = None
        self._changed: anyio.Event | None = None
        #: Dropped datagrams by reason, for tests and diagnostics.
        self.dropped: dict[str, int] = {
            "malformed": 0,
            "throttled": 0,
            "unmatched": 0,
            "unpaid": 0,
            "other": 0,
        }

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._tg is not None or self._closed:
            raise RuntimeError("a NodeCore can be entered only once")
        if self._local_address is None:
            self._endpoint = UDPEndpoint(self.datagram_received)
            self._local_address = self._endpoint.bind(
                self._host, self._port, any_port=self._any_port
            )
            if self._two_sockets:
                self._client_endpoint = UDPEndpoint(self._client_datagram)
                self._client_address = self._client_endpoint.bind(self._host, 0)
                self._client_send = self._client_endpoint_send
        self._bootstrapped_event = anyio.Event()
        self._changed = anyio.Event()
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        if self._endpoint is not None:
            self._tg.start_soon(self._endpoint.receive_loop)
        if self._client_endpoint is not None:
            self._tg.start_soon(self._client_endpoint.receive_loop)
        self._tg.start_soon(self._drain_loop)
        self._start_background()
        return self

    def _start_background(self) -> None:
        """Start the subclass's background work (bootstrap, ticks) in the task group."""

    async def _drain_loop(self) -> None:
        """Every 750 ms: token rotation, congestion window, queued sends."""
        while True:
            await anyio.sleep(DRAIN_INTERVAL)
            self._rpc.drain()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        await self.aclose()
        assert self._tg is not None
        return await self._tg.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Fail every pending request, stop every task, release the socket. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._rpc.close()
        if self._endpoint is not None:
            self._endpoint.close()
        if self._client_endpoint is not None:
            self._client_endpoint.close()
        if self._bootstrapped_event is not None:
            self._bootstrapped_event.set()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        await anyio.lowlevel.cancel_shielded_checkpoint()

    @property
    def closed(self) -> bool:
        return self._closed

    def start_task(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``fn()`` in the node's task group (stopped with the node)."""
        if self._closed or self._tg is None:
            raise DHTError("the node is closed" if self._closed else "the node is not running")
        self._tg.start_soon(fn)

    async def fully_bootstrapped(self) -> None:
        """Wait for the join walk (and the firewall test it may trigger) to end."""
        if self._bootstrapped_event is None:
            raise RuntimeError("the node is not running")
        await self._bootstrapped_event.wait()

    def _notify(self) -> None:
        """Wake :meth:`wait_until` callers: the table, our address or our mode changed."""
        if self._changed is not None:
            self._changed.set()
            self._changed = anyio.Event()

    async def wait_until(self, predicate: Callable[[], bool], within: float = 30.0) -> None:
        """Return once ``predicate()`` holds, re-checked on every change of the routing
        table, the sampled address or the node's mode (no polling); ``within`` is a safety
        bound (TimeoutError)."""
        with anyio.fail_after(within):
            while not predicate():
                if self._changed is None:
                    raise RuntimeError("the node is not running")
                await self._changed.wait()

    def _client_datagram(self, data: bytes, address: Address) -> None:
        self.datagram_received(data, address, client=True)

    # -- introspection --------------------------------------------------------------------

    @property
    def id(self) -> bytes | None:
        """Our node id once persistent (H of our public address), else None."""
        return None if self.ephemeral else self.table.id

    @property
    def address(self) -> Address:
        """The local (host, port) our socket is bound to."""
        if self._local_address is None:
            raise RuntimeError("the node is not running")
        return self._local_address

    @property
    def client_address(self) -> Address | None:
        """The local address of the client socket (requests leave from it while
        firewalled), or None when the node runs on one socket."""
        return self._client_address

    @property
    def public_address(self) -> Address | None:
        """Our address as other nodes see it (sampled from replies), if consistent."""
        if self._nat.host is None:
            return None
        return (self._nat.host, self._nat.port)

    @property
    def randomized(self) -> bool:
        """The NAT gives a new port per destination (hosts agree, ports do not)."""
        return self._nat.host is not None and self._nat.port == 0

    @property
    def transactions(self) -> Transactions:
        return self._rpc

    @property
    def pending_verifications(self) -> int:
        """Requesters being pinged back before they may enter the routing table."""
        return len(self._verifying)

    @property
    def tracked_sources(self) -> int:
        """Sources with a request budget in memory (bounded by ``limits.max_sources``)."""
        return 0 if self._gate is None else self._gate.tracked_sources

    def to_array(self, limit: int | None = None) -> list[Address]:
        """Nodes we know, most recently heard first (``dht.toArray()``)."""
        nodes = self.recent.newest_first()
        return [n.address for n in (nodes if limit is None else nodes[:limit])]

    def bootstrap_peers(self) -> list[Peer]:
        """The bootstrap nodes, resolved to IPv4 addresses (see :meth:`resolve_bootstrap`)."""
        return [Peer(h, p, node_id(h, p)) for h, p in self._bootstrap_addresses]

    async def resolve_bootstrap(self) -> list[Address]:
        """Resolve the bootstrap list to IPv4 addresses (``_resolveBootstrapNodes``): a
        literal as is, ``"ip@name"`` as its IP (the name if the IP part is not one), a name
        through DNS; names that do not resolve are skipped."""
        resolved: list[Address] = []
        for host, port in self.bootstrap_nodes:
            if "@" in host:
                suggested, _, fallback = host.partition("@")
                host = suggested if _is_ipv4(suggested) else fallback
            if not _is_ipv4(host):
                try:
                    infos = await anyio.getaddrinfo(
                        host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM
                    )
                except OSError:
                    continue
                if not infos:
                    continue
                host = str(infos[0][4][0])
            if (host, port) not in resolved:
                resolved.append((host, port))
        self._bootstrap_addresses = resolved
        return resolved

    def accept_node(self, address: IPv4Address) -> bool:
        return self.node_filter is None or self.node_filter(address)

    # -- datagrams --------------------------------------------------------------------------

    def _endpoint_send(self, data: bytes, address: Address) -> None:
        if self._endpoint is not None:
            self._endpoint.send(data, address)

    def _client_endpoint_send(self, data: bytes, address: Address) -> None:
        if self._client_endpoint is not None:
            self._client_endpoint.send(data, address)

    def _send_on(self, data: bytes, address: Address, client: bool) -> None:
        if self._closed:
            return
        if client and self._client_send is not None:
            self._client_send(data, address)
        else:
            self._send(data, address)

    def _send_request(self, data: bytes, address: Address) -> None:
        """Requests leave from the client socket while firewalled (JS's rule): a reply that
        reaches the server socket then proves it reachable."""
        self._send_on(data, address, self.firewalled)

    def _relay(self, data: bytes, to: Address, request: IncomingRequest) -> None:
        self._send_on(data, to, request.client)

    def _wire_id(self) -> bytes | None:
        return None if self.ephemeral else self.table.id

    def _closest_addresses(self, target: bytes) -> list[IPv4Address]:
        return [IPv4Address(n.host, n.port) for n in self.table.closest(target)]

    def _send_reply(self, data: bytes, to: Address, request: IncomingRequest) -> None:
        """Replies to addresses that never proved themselves (no valid token, not in our
        table, never answered us) spend byte budgets: a spoofed flood cannot turn us into
        an amplifier beyond the global rate."""
        gate = self._gate
        if gate is not None and request.token is None:
            now = self.clock()
            proven = gate.is_proven(to, now) or self.table.has(node_id(*to))
            if not proven and not gate.allow_unproven_reply(to, len(data), now):
                self.dropped["unpaid"] += 1
                return
        self._send_on(data, to, request.client)

    def datagram_received(self, data: bytes, address: Address, *, client: bool = False) -> None:
        """Handle one datagram from ``address`` (``client``: it came to the client socket);
        never raises because of its content.

        Anything that is not a dht-rpc message (one-byte holepunch probes, UDX packets on a
        shared socket) is ignored, as ``io.js`` does.
        """
        if self._closed or len(data) < 2 or not 0 < address[1] < 65536:
            return
        if not client and self._server_hosts is not None:
            self._server_hosts.add(address[0])  # the firewall test watches the server socket
        # A datagram on the socket we do not send from (a PING_NAT answer on the server
        # socket while firewalled) says nothing about our usual mapping: not sampled.
        external = client != (self.firewalled and self._client_send is not None)
        kind = data[0]
        if kind == RESPONSE_ID:
            tid = peek_tid(data)
            if tid is None or not self._rpc.expects(tid):
                self.dropped["unmatched"] += 1
                return
            try:
                response = decode_response(data)
            except DHTRPCDecodeError:
                self.dropped["malformed"] += 1
                return
            reply = self._rpc.on_response(response, address)
            if reply is None:
                self.dropped["unmatched"] += 1
                return
            if self._gate is not None:
                self._gate.prove(address, self.clock())
            self._add_node_from_network(not external, reply.from_, reply.to, proven=True)
            return
        if kind != REQUEST_ID:
            self.dropped["other"] += 1
            return
        if self._gate is not None and not self._gate.allow_request(address, self.clock()):
            self.dropped["throttled"] += 1
            return
        try:
            message = decode_request(data)
        except DHTRPCDecodeError:
            self.dropped["malformed"] += 1
            return
        request = self._rpc.incoming(message, address, len(data), client)
        if request is not None:
            if request.token is not None and self._gate is not None:
                self._gate.prove(address, self.clock())
            self._on_request(request)

    # -- serving ------------------------------------------------------------------------------

    def _on_request(self, req: IncomingRequest) -> None:
        if req.from_.id is not None:
            self._add_node_from_network(True, req.from_, req.to, proven=False)
        if not req.internal:
            if not self.on_request(req):
                req.send_reply(
                    ErrorCode.UNKNOWN_COMMAND,
                    None,
                    token=False,
                    closer_nodes=req.target is not None,
                )
            return
        command = req.command
        if command == InternalCommand.PING:
            req.send_reply(0, None, token=False, closer_nodes=False)
        elif command == InternalCommand.DELAYED_PING:
            self._on_delayed_ping(req)
        elif command == InternalCommand.PING_NAT:
            if req.value is None or len(req.value) < 2:
                return
            port = req.value[0] | req.value[1] << 8
            if port == 0:
                return
            req.send_reply(0, None, token=False, closer_nodes=False, to=(req.from_.host, port))
        elif command == InternalCommand.FIND_NODE:
            if req.target is None:
                return
            req.send_reply(0, None, token=False, closer_nodes=True)
        elif command == InternalCommand.DOWN_HINT:
            if req.value is None or len(req.value) < 6:
                return
            if self._checks < MAX_CHECKS:
                node = self.table.get(_hash6(req.value[:6]))
                if node is not None and (node.pinged < self._tick or node.down_hints == 0):
                    node.down_hints += 1
                    self._check(node)
            req.send_reply(0, None, token=False, closer_nodes=False)
        else:
            req.send_reply(
                ErrorCode.UNKNOWN_COMMAND, None, token=False, closer_nodes=req.target is not None
            )

    def on_request(self, request: IncomingRequest) -> bool:
        """A non-internal request (a HyperDHT command). Override, or pass
        ``request_handler``; answer with ``request.reply``/``error``/``relay`` (now or
        from a task) and return True, or return False for "unknown command"."""
        if self.request_handler is None:
            return False
        return self.request_handler(request)

    def _on_delayed_ping(self, req: IncomingRequest) -> None:
        if req.value is None or len(req.value) < 4 or self._delayed >= MAX_DELAYED:
            return
        delay = int.from_bytes(req.value[:4], "little") / 1000
        if delay > self.max_ping_delay:
            return
        self._delayed += 1

        async def later() -> None:
            try:
                await anyio.sleep(delay)
                req.send_reply(0, None, token=False, closer_nodes=False)
            finally:
                self._delayed -= 1

        try:
            self.start_task(later)
        except DHTError:
            self._delayed -= 1

    # -- routing --------------------------------------------------------------------------

    def _add_node_from_network(
        self, sample: bool, from_: Peer, to: IPv4Address, *, proven: bool
    ) -> None:
        """Someone with a verified id (or none) talked to us. A reply proves its address; a
        request's source may be forged, so a new requester is pinged first."""
        if self.node_filter is not None and not self.node_filter(IPv4Address(*from_.address)):
            return
        if from_.id is None:
            if proven:
                self._sample_bootstrap_maybe(from_.address, to)
            return
        old = self.table.get(from_.id)
        if old is not None:
            if proven and sample and (old.sampled == 0 or self._tick - old.sampled >= OLD_NODE):
                old.to = to
                old.sampled = self._tick
                self._nat_add(to.host, to.port)
            old.pinged = old.seen = self._tick
            self.recent.add(old)
            return
        if not proven:
            self._verify(from_.address)
            return
        self._add_node(RoutingNode(from_.id, from_.host, from_.port, to=to))

    def _verify(self, address: Address) -> None:
        """Ping a requester that is not in the table yet; its reply admits it."""
        if address in self._verifying or len(self._verifying) >= MAX_VERIFYING:
            return
        self._verifying.add(address)

        async def ping() -> None:
            try:
                await self.ping(address)
            except DHTError:
                pass
            finally:
                self._verifying.discard(address)

        try:
            self.start_task(ping)
        except DHTError:
            self._verifying.discard(address)

    def add_node(self, host: str, port: int) -> None:
        """Add a node we trust to be there (``dht.addNode``)."""
        self._add_node(RoutingNode(node_id(host, port), host, port))

    def _add_node(self, node: RoutingNode) -> None:
        if node in self.recent or node.id == self.table.id or self.table.has(node.id):
            return
        node.added = node.pinged = node.seen = self._tick
        if not self.table.add(node):
            return
        self.recent.add(node)
        if node.to is not None and node.sampled == 0:
            node.sampled = self._tick
            self._nat_add(node.to.host, node.to.port)
        self._notify()

    def _remove_node(self, node: RoutingNode) -> None:
        if node not in self.recent:
            return
        self.table.remove(node.id)
        self.recent.remove(node)
        self._notify()

    def _on_full_row(self, new: RoutingNode, row: list[RoutingNode]) -> None:
        """A row is full and ``new`` was refused (maintenance, in the subclass)."""

    def _check(self, node: RoutingNode) -> None:
        """Ping ``node`` and drop it if it is gone (maintenance, in the subclass)."""

    # -- NAT samples ------------------------------------------------------------------------

    def _nat_add(self, host: str, port: int) -> None:
        before = (self._nat.host, self._nat.port)
        self._nat.add(host, port)
        if before != (self._nat.host, self._nat.port):
            self._notify()

    def _sample_bootstrap_maybe(self, source: Address, to: IPv4Address) -> None:
        """Id-less nodes (bootstrap nodes still ephemeral) may report our address too, but
        only as many as we have bootstrap nodes, so strangers cannot steer the sampler."""
        if len(self._non_persistent_samples) >= max(1, len(self.bootstrap_nodes)):
            return
        if source in self._non_persistent_samples:
            return
        self._non_persistent_samples.append(source)
        self._nat_add(to.host, to.port)

    # -- requests -------------------------------------------------------------------------

    async def request(
        self,
        to: Address,
        command: int,
        *,
        internal: bool = False,
        target: bytes | None = None,
        value: bytes | None = None,
        token: bytes | None = None,
        retries: int = DEFAULT_RETRIES,
        resend_after: float = DEFAULT_TIMEOUT,
        any_responder: bool = False,
        from_client: bool | None = None,
        on_cycle: Callable[[], None] | None = None,
        send: Callable[[bytes, Address], None] | None = None,
    ) -> Reply:
        """One request with its resends; returns the reply whatever its ``error`` field
        (check ``reply.error``). Raises DHTTimeoutError / DHTRequestError.

        ``any_responder``: accept the reply from whoever sends it with our tid (a relayed
        request, answered by a third node). ``from_client``: send from the client (True) or
        server (False) socket instead of the usual one (client while firewalled). ``send``:
        send from another socket altogether (a hole puncher's), whose replies come back
        through :meth:`foreign_response`.
        """
        if send is None and from_client is not None:
            choice = from_client

            def send(data: bytes, to: Address) -> None:
                self._send_on(data, to, choice)

        reply = await self._rpc.request(
            to,
            command,
            internal=internal,
            target=target,
            value=value,
            token=token,
            retries=retries,
            resend_after=resend_after,
            any_responder=any_responder,
            on_cycle=on_cycle,
            send=send,
        )
        return reply

    def foreign_response(self, data: bytes, address: Address) -> None:
        """A datagram that reached a socket other than the node's own (a hole puncher's):
        only responses to our requests are taken, and they teach the routing table and
        the NAT sampler nothing (they describe that socket's mapping, not ours)."""
        if self._closed or len(data) < 2 or not 0 < address[1] < 65536:
            return
        if data[0] == REQUEST_ID:
            self._foreign_request(data, address)
            return
        if data[0] != RESPONSE_ID:
            return
        tid = peek_tid(data)
        if tid is None or not self._rpc.expects(tid):
            self.dropped["unmatched"] += 1
            return
        try:
            response = decode_response(data)
        except DHTRPCDecodeError:
            self.dropped["malformed"] += 1
            return
        if self._rpc.on_response(response, address) is None:
            self.dropped["unmatched"] += 1

    def _foreign_request(self, data: bytes, address: Address) -> None:
        """Only a PEER_HOLEPUNCH round may reach a puncher's socket (a relay sends the
        client's round straight to the server's punching address); anything else there is
        dropped."""
        if self._gate is not None and not self._gate.allow_request(address, self.clock()):
            self.dropped["throttled"] += 1
            return
        try:
            message = decode_request(data)
        except DHTRPCDecodeError:
            self.dropped["malformed"] += 1
            return
        if message.internal or message.command != FOREIGN_COMMAND:
            self.dropped["other"] += 1
            return
        request = self._rpc.incoming(message, address, len(data), False)
        if request is not None:
            self.on_request(request)

    async def ping(self, to: Address, *, retries: int = DEFAULT_RETRIES) -> Reply:
        return await self.request(to, InternalCommand.PING, internal=True, retries=retries)


def _is_ipv4(host: str) -> bool:
    try:
        encode_ipv4(host, 0)
    except ValueError:
        return False
    return True


def _hash6(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()
