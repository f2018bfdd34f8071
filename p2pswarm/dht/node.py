"""DHTNode: the DHT's I/O edge and its client side: requests, queries, announces.

The node owns one UDP socket (:mod:`.rpc`: receive loop, reply matching, retransmits) and
a task group. It walks the network with iterative queries (:mod:`.query`), and announces,
unannounces and looks up signed records (:mod:`.records`). The codec, records, storage,
tokens, routing table and NAT reading are pure modules; this is where they meet the
network.

Answering other nodes is :mod:`.serving`'s job. The two halves meet only at the shared
routing table, record store and token issuer, and at the socket: what we ask is driven by
our own caller and trusts our own state, what we answer is driven by strangers and is all
defence. The node builds the :class:`~.serving.Responder`, hands the socket's requests to
it and lends it a ping and a task slot to check requesters' addresses.

A persistent node puts its id in every datagram and so enters other nodes' routing tables,
answers queries and stores records. An *ephemeral* node (the default, what a swarm uses)
sends no id: it queries and announces, but nobody routes through it and it stores nothing.
A request to a node that never answers costs at most :attr:`DHTNode.request_budget`
(1.75 s by default: attempts after 0.25, 0.5 and 1 s), never rpcudp's 5 s.

Every datagram is hostile until proven otherwise: requests go through the responder's
defences (:mod:`.serving`); a query pays for its replies with padding or a token
(:mod:`.amplification`) and caps what lying replies can make it do (:mod:`.query`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel
from kademlia.node import Node

from ..errors import DHTError, DHTTimeoutError
from ..keys import KeyPair, check_public_key, check_topic
from ..networks.discovery_backend import DiscoveryBackend
from ..peer_record import PeerAddress, PeerRecord
from .amplification import ReplyTokens, pad_target
from .messages import QUERY_COMMANDS, Command, NodeContact, Response, Status
from .nat import NatObserver, NatStatus
from .query import IterativeQuery, ReplyCallback, TopicLookup
from .ratelimit import DEFAULT_RATE_LIMIT, RateLimit
from .records import RecordKind, create_record, create_unannounce, target_for
from .routing import RoutingState, RoutingTable, contacts_of, save_routing_state
from .rpc import DatagramRpc, resolve
from .serving import Responder, stored_records
from .storage import DEFAULT_MAX_PER_TOPIC, DEFAULT_MAX_TOTAL, DEFAULT_TTL, RecordStore
from .tokens import TOKEN_ROTATION, TokenIssuer

__all__ = ("DHTNode",)

logger = logging.getLogger(__name__)

Address = tuple[str, int]
_T = TypeVar("_T")

DEFAULT_KSIZE: Final = 20
#: Requests in flight per query: dht-rpc's default concurrency (Kademlia's paper says 3; on
#: today's links ten small datagrams cost nothing and cut a lookup's latency).
DEFAULT_ALPHA: Final = 10
MAINTENANCE_INTERVAL: Final = 30.0
#: A record under a public key (for find_peer) goes to this many of the closest nodes, as
#: HyperDHT's announcer keeps a few relays per server rather than k copies.
PEER_REPLICAS: Final = 5
#: Maintenance rounds between routing refreshes (every 5 minutes).
REFRESH_EVERY: Final = 10


class DHTNode:
    """A Kademlia DHT node with signed multi-value records; implements DiscoveryBackend.

    Use as ``async with DHTNode(bootstrap=[(host, port)]) as node:``: entering binds the
    socket, starts the receive loop in the node's own task group and bootstraps.
    ``aclose()`` (idempotent) stops every query and releases the socket.

    ``rate_limit`` is the request budget of each source (:mod:`.ratelimit`); requests
    beyond it are dropped unread. None turns the limit off (a closed lab network only).
    """

    def __init__(
        self,
        *,
        bootstrap: Sequence[Address] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        ephemeral: bool = True,
        node_id: bytes | None = None,
        ksize: int = DEFAULT_KSIZE,
        alpha: int = DEFAULT_ALPHA,
        request_timeout: float = 1.0,
        retries: int = 2,
        first_retransmit: float = 0.25,
        record_ttl: float = DEFAULT_TTL,
        max_records_per_topic: int | None = None,
        max_records: int | None = None,
        token_rotation: float = TOKEN_ROTATION,
        clock: Callable[[], float] = time.time,
        rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT,
    ) -> None:
        if node_id is not None and len(node_id) != 20:
            raise ValueError("node_id must be 20 bytes")
        if ksize < 1 or alpha < 1:
            raise ValueError("ksize and alpha must be positive")
        self.node_id: bytes = node_id if node_id is not None else os.urandom(20)
        self.ephemeral = ephemeral
        self.ksize = ksize
        self.alpha = alpha
        self.record_ttl = record_ttl
        self.clock = clock
        self._bootstrap_addresses = [(h, int(p)) for h, p in bootstrap]
        self._host = host
        self._port = port
        self._wire_id = None if ephemeral else self.node_id
        self._routing = RoutingTable(self.node_id, ksize, self._ping_head)
        self._store = RecordStore(
            ttl=record_ttl,
            max_per_topic=max_records_per_topic or DEFAULT_MAX_PER_TOPIC,
            max_total=max_records or DEFAULT_MAX_TOTAL,
        )
        self._tokens = TokenIssuer(clock(), rotation=token_rotation)
        self._nat = NatObserver()
        self._pinging: set[bytes] = set()
        self._seqs: dict[tuple[RecordKind, bytes, bytes], int] = {}
        self._reply_tokens = ReplyTokens()
        self._responder = Responder(
            node_id=self.node_id,
            wire_id=self._wire_id,
            ksize=ksize,
            clock=clock,
            routing=self._routing,
            store=self._store,
            tokens=self._tokens,
            rate_limit=rate_limit,
            ping=self.ping,
            start=self._start_if_running,
        )
        self._rpc = DatagramRpc(
            on_request=self._responder.serve,
            on_response=self._learn_from_reply,
            wire_id=self._wire_id,
            request_timeout=request_timeout,
            retries=retries,
            first_retransmit=first_retransmit,
            admit=self._responder.admit,
        )
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False
        self._closed_event: anyio.Event | None = None  # made in __aenter__: needs a loop

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> DHTNode:
        if self._tg is not None or self._closed:
            raise RuntimeError("a DHTNode can be entered only once")
        address = await self._rpc.bind(self._host, self._port)
        self._nat.set_local_address(address)
        self._closed_event = anyio.Event()
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            self._tg.start_soon(self._rpc.receive_loop)
            self._tg.start_soon(self._maintenance_loop)
            await self.bootstrap()
        except BaseException as exc:
            await self.aclose()
            await self._tg.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

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
        """Stop every query and release the socket. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        if self._closed_event is not None:
            self._closed_event.set()
        self._rpc.close()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        # Shielded: when called from __aexit__ our own (now cancelled) scope is current.
        await anyio.lowlevel.cancel_shielded_checkpoint()

    async def wait_closed(self) -> None:
        """Return once :meth:`aclose` has been called (by anyone)."""
        if self._closed_event is None:
            raise RuntimeError("the DHT node is not running")
        await self._closed_event.wait()

    @property
    def closed(self) -> bool:
        return self._closed

    def _spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        if self._closed or self._tg is None:
            raise DHTError(
                "the DHT node is closed" if self._closed else "the DHT node is not running"
            )
        self._tg.start_soon(fn)

    def _start_if_running(self, fn: Callable[[_T], Coroutine[Any, Any, None]], arg: _T) -> bool:
        """Run ``fn(arg)`` in the background, unless the node is closed or not yet running."""
        if self._closed or self._tg is None:
            return False
        self._tg.start_soon(fn, arg)
        return True

    # -- introspection --------------------------------------------------------------------

    def __repr__(self) -> str:
        mode = "ephemeral" if self.ephemeral else "persistent"
        address = self._rpc.address
        where = "not running" if address is None else str(PeerAddress(*address))
        state = " closed" if self._closed else ""
        return (
            f"<DHTNode {mode} {where}{state} id={self.node_id.hex()[:12]} "
            f"contacts={len(self._routing)} records={len(self._store)}>"
        )

    @property
    def address(self) -> Address:
        """The (host, port) the UDP socket is bound to."""
        if self._rpc.address is None:
            raise RuntimeError("the DHT node is not running")
        return self._rpc.address

    @property
    def nat(self) -> NatStatus:
        """Our address as other nodes report it, and the NAT class that suggests."""
        return self._nat.status()

    @property
    def observed_address(self) -> Address | None:
        return self._nat.status().address

    @property
    def request_budget(self) -> float:
        """The longest a request to a node that never answers can take, in seconds."""
        return self._rpc.request_budget

    @property
    def routing_table(self) -> RoutingTable:
        return self._routing

    @property
    def stored_records(self) -> int:
        return len(self._store)

    def contacts(self) -> tuple[NodeContact, ...]:
        return contacts_of(self._routing.all_nodes())

    def routing_state(self) -> RoutingState:
        return RoutingState(self.node_id, self.contacts())

    def save_routing_state(self, path: str | os.PathLike[str]) -> None:
        """Write the id and contacts as JSON (atomically), to bootstrap from after a restart."""
        save_routing_state(path, self.routing_state())

    @property
    def unpaid_requests(self) -> int:
        """Replies not sent because the request could not pay for even a bare one."""
        return self._responder.unpaid_requests

    @property
    def dropped_datagrams(self) -> int:
        """Datagrams dropped as malformed or unexpected; for tests and diagnostics."""
        return self._rpc.dropped_datagrams

    @property
    def throttled_requests(self) -> int:
        """Requests dropped unread because their source was over its rate limit."""
        return self._rpc.throttled_requests

    @property
    def request_timeout(self) -> float:
        return self._rpc.request_timeout

    @property
    def retries(self) -> int:
        return self._rpc.retries

    @property
    def first_retransmit(self) -> float:
        return self._rpc.first_retransmit

    # -- requests ---------------------------------------------------------------------------

    def _learn_from_reply(self, response: Response, source: Address) -> None:
        """Every matched reply says how we look from outside, and who answered."""
        self._nat.add(source, response.to)
        if response.node_id is not None:
            self._routing.add_contact(Node(response.node_id, source[0], source[1]))

    async def request(
        self,
        address: Address,
        command: Command,
        *,
        key: bytes = b"",
        token: bytes = b"",
        payload: bytes = b"",
        on_slow: Callable[[], None] | None = None,
    ) -> Response:
        """One raw request with its retransmits (see :meth:`DatagramRpc.request`).

        A query presents the token this responder gave us lately, or pays for its reply
        with padding (:mod:`.amplification`); a truncated reply is asked for again once,
        with the token it carried.
        """
        if command not in QUERY_COMMANDS:
            return await self._rpc.request(
                address, command, key=key, token=token, payload=payload, on_slow=on_slow
            )
        token = self._reply_tokens.get(address, time.monotonic())
        response = await self._rpc.request(
            address,
            command,
            key=key,
            token=token,
            pad_to=0 if token else pad_target(command),
            on_slow=on_slow,
        )
        fresh = response.token
        if fresh is not None:
            self._reply_tokens.put(address, fresh, time.monotonic())
            if response.truncated and fresh != token:
                response = await self._rpc.request(address, command, key=key, token=fresh)
        return response

    async def ping(self, address: Address) -> Response:
        return await self.request(address, Command.PING)

    def _ping_head(self, node: Node) -> None:
        """A bucket is full: check that its oldest node still answers, else replace it."""
        if node.id not in self._pinging and self._start_if_running(self._check_head, node):
            self._pinging.add(node.id)

    async def _check_head(self, node: Node) -> None:
        try:
            await self.ping((node.ip, node.port))
        except DHTTimeoutError:
            self._routing.remove_contact(node)
        except DHTError:
            pass
        finally:
            self._pinging.discard(node.id)

    # -- maintenance ----------------------------------------------------------------------

    def _local_records(self, kind: RecordKind, topic: bytes) -> tuple[tuple[str, bytes], ...]:
        """What we hold ourselves under ``topic``: a lookup yields it before asking anyone."""
        return stored_records(self._store, kind, topic, self.clock())

    async def _maintenance_loop(self) -> None:
        rounds = 0
        while True:
            await anyio.sleep(MAINTENANCE_INTERVAL)
            rounds += 1
            expired = self._store.expire(self.clock())
            if expired:
                logger.debug("expired %d records", expired)
            if rounds % REFRESH_EVERY == 0 and len(self._routing):
                await self.refresh()

    async def refresh(self) -> None:
        """Walk towards our own id and a random one: fresh contacts in, dead ones out.

        Runs every few minutes by itself (Kademlia's bucket refresh, simplified); a
        contact that misses a whole request with its retransmits is dropped.
        """
        for target in (self.node_id, os.urandom(20)):
            try:
                await self._query(None, target)
            except DHTError as exc:
                logger.debug("routing refresh failed: %s", exc)
                return

    # -- queries ----------------------------------------------------------------------------

    async def _query(
        self,
        kind: RecordKind | None,
        key: bytes,
        *,
        on_reply: ReplyCallback | None = None,
    ) -> list[tuple[Node, Response]]:
        """Walk to the nodes closest to ``key``: FIND_NODE for a raw id (``kind`` None),
        LOOKUP for a topic, FIND_PEER for a public key."""
        if kind is None:
            command, target = Command.FIND_NODE, key
        else:
            command = Command.LOOKUP if kind is RecordKind.TOPIC else Command.FIND_PEER
            target = target_for(key)

        async def ask(address: Address, on_slow: Callable[[], None]) -> Response:
            try:
                return await self.request(address, command, key=key, on_slow=on_slow)
            except DHTTimeoutError:
                self._forget(address)
                raise

        query = IterativeQuery(
            target,
            ask,
            seeds=self._routing.find_neighbors(Node(target), self.ksize),
            bootstrap=self._bootstrap_addresses,
            ksize=self.ksize,
            alpha=self.alpha,
            local_id=self.node_id,
            on_reply=on_reply,
        )
        return await query.run()

    def _forget(self, address: Address) -> None:
        """Drop contacts at ``address``: a whole request with its retransmits went unanswered."""
        for node in self._routing.all_nodes():
            if (node.ip, node.port) == address:
                self._routing.remove_contact(node)

    async def bootstrap(self) -> None:
        """Join the network: walk towards our own id from the bootstrap nodes.

        With no bootstrap nodes (the first node of a network) this returns at once. An
        unreachable bootstrap list is logged, not raised: the node keeps serving and a
        later query retries the bootstrap nodes.
        """
        if not self._bootstrap_addresses:
            return
        self._bootstrap_addresses = [
            await resolve(address, self._rpc.family) for address in self._bootstrap_addresses
        ]
        self._bootstrap_addresses = [a for a in self._bootstrap_addresses if a != self.address]
        target = self.node_id if not self.ephemeral else os.urandom(20)
        replies = await self._query(None, target)
        if not replies and len(self._routing) == 0:
            logger.warning("DHT bootstrap reached none of %s", self._bootstrap_addresses)

    def _next_seq(self, kind: RecordKind, topic: bytes, public_key: bytes) -> int:
        key = (kind, topic, public_key)
        seq = max(self._seqs.get(key, -1) + 1, int(self.clock() * 1_000_000))
        self._seqs[key] = seq
        return seq

    async def _commit(
        self,
        replies: list[tuple[Node, Response]],
        command: Command,
        payload: bytes,
    ) -> int:
        """Send a signed store (or removal) to every node that gave a token; count the OKs."""
        stored = 0

        async def commit(node: Node, token: bytes) -> None:
            nonlocal stored
            try:
                response = await self.request(
                    (node.ip, node.port), command, token=token, payload=payload
                )
            except DHTTimeoutError:
                return
            if response.status is Status.OK:
                stored += 1
            else:
                logger.debug("%s refused %s: %s", node, command.name, response.status.name)

        async with anyio.create_task_group() as tg:
            for node, response in replies:
                if response.token is not None:
                    tg.start_soon(commit, node, response.token)
        return stored

    async def announce(
        self,
        topic: bytes,
        key_pair: KeyPair,
        port: int,
        *,
        addresses: Sequence[PeerAddress] = (),
    ) -> None:
        """Store a signed record for ``key_pair`` under ``topic`` on the k closest nodes.

        ``port`` is where the peer listens; the storing nodes pair it with the source IP
        they observe. ``addresses`` adds up to four more (relays that forward a connect
        request; a direct one must be our own IP as the storing nodes see it, or they refuse
        the record). Raises DHTError if no node stored it.
        """
        topic = check_topic(topic)
        await self._announce(RecordKind.TOPIC, topic, key_pair, port, tuple(addresses))

    async def announce_self(
        self, key_pair: KeyPair, port: int, *, addresses: Sequence[PeerAddress] = ()
    ) -> None:
        """Announce ``key_pair`` under its own public key, so :meth:`find_peer` finds it.

        Stored on the :data:`PEER_REPLICAS` nodes closest to ``blake2b(public_key)``.
        """
        await self._announce(RecordKind.PEER, key_pair.public_key, key_pair, port, tuple(addresses))

    async def _announce(
        self,
        kind: RecordKind,
        topic: bytes,
        key_pair: KeyPair,
        port: int,
        addresses: tuple[PeerAddress, ...],
    ) -> None:
        if not isinstance(key_pair, KeyPair):
            raise TypeError(f"key_pair must be a KeyPair, got {type(key_pair).__name__}")
        if not isinstance(port, int) or not 0 <= port <= 0xFFFF:
            raise ValueError(f"port must be 0..65535, got {port!r}")
        record = create_record(
            key_pair,
            topic,
            port,
            seq=self._next_seq(kind, topic, key_pair.public_key),
            expiry=self.clock() + self.record_ttl,
            kind=kind,
            addresses=addresses,
        )
        replies = await self._query(None, target_for(topic))
        if kind is RecordKind.PEER:
            replies = replies[:PEER_REPLICAS]
        stored = await self._commit(replies, Command.ANNOUNCE, record.encode())
        if stored == 0:
            raise DHTError(f"announce reached no storing node ({len(replies)} nodes answered)")

    async def unannounce(self, topic: bytes, key_pair: KeyPair) -> None:
        """Remove our record under ``topic`` from the nodes closest to it (signed)."""
        topic = check_topic(topic)
        await self._unannounce(RecordKind.TOPIC, topic, key_pair)

    async def unannounce_self(self, key_pair: KeyPair) -> None:
        await self._unannounce(RecordKind.PEER, key_pair.public_key, key_pair)

    async def _unannounce(self, kind: RecordKind, topic: bytes, key_pair: KeyPair) -> None:
        seq = self._next_seq(kind, topic, key_pair.public_key)
        message = create_unannounce(key_pair, topic, seq=seq, kind=kind)
        replies = await self._query(None, target_for(topic))
        await self._commit(replies, Command.UNANNOUNCE, message.encode())

    def lookup(self, topic: bytes) -> TopicLookup:
        """Find the peers announced under ``topic``: an async iterator of verified records."""
        return TopicLookup(self, RecordKind.TOPIC, check_topic(topic))

    async def find_peer(self, public_key: bytes) -> PeerRecord | None:
        """The record a peer announced under its own key (:meth:`announce_self`), or None."""
        public_key = check_public_key(public_key)
        async with TopicLookup(self, RecordKind.PEER, public_key) as found:
            async for record in found:
                return record
        return None


if TYPE_CHECKING:  # mypy proves DHTNode satisfies the swarm's discovery interface

    def _is_a_discovery_backend(node: DHTNode) -> DiscoveryBackend:
        return node
