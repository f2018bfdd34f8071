"""Iterative Kademlia queries that never wait for a whole round, and streaming lookups.

A query walks towards a target: it keeps the candidates in kademlia's ``NodeHeap``
(ordered by XOR distance, the k closest visible), and whenever a reply or a failure frees
a slot it immediately asks the closest uncontacted candidate, keeping ``alpha`` requests
in flight. So a slow node delays only its own slot, not a round (the flaw of kademlia's
own crawler, which synchronises per round), and a request whose first attempt went
unanswered gives its slot up while it retransmits. The query ends when nothing is in flight and
every one of the k closest known nodes has been asked; what it returns is the k closest
nodes that answered, with their replies (and so their round-trip tokens).

Contacts come from other nodes' replies, so a lying node could steer a query anywhere:
towards endless fake ids, or at a victim's address (which we would then flood with
requests). So a query sends at most :data:`MAX_QUERY_REQUESTS` requests, takes at most
:data:`MAX_CONTACTS_PER_HOST` contacts per host, and only contacts (and records) at
addresses that could be a peer's (:func:`plausible_host`).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final, Protocol

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from kademlia.node import Node, NodeHeap

from ..errors import DHTError, DHTTimeoutError, InvalidRecordError
from ..peer_record import PeerRecord
from .messages import Command, NodeContact, Response
from .ratelimit import SourceKey, source_key
from .records import RecordKind, decode_record

__all__ = (
    "MAX_CONTACTS_PER_HOST",
    "MAX_QUERY_REQUESTS",
    "IterativeQuery",
    "LookupNode",
    "TopicLookup",
)

logger = logging.getLogger(__name__)

Address = tuple[str, int]
#: Sends one request; calls its second argument once if the first attempt goes unanswered.
RequestFn = Callable[[Address, Callable[[], None]], Awaitable[Response]]
ReplyCallback = Callable[[Address, Response], None]

#: Requests one query may send (a lookup in a 200-node network sends a few dozen).
MAX_QUERY_REQUESTS: Final = 256
#: Contacts one query takes at one host (by source key: an IP; a socket on loopback).
MAX_CONTACTS_PER_HOST: Final = 4


class LookupNode(Protocol):
    """What a :class:`TopicLookup` uses of its node (:class:`~.node.DHTNode` satisfies it):
    spelled out so that this module need not import the node, which imports it."""

    clock: Callable[[], float]

    def _spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None: ...

    def _local_records(self, kind: RecordKind, topic: bytes) -> tuple[tuple[str, bytes], ...]: ...

    async def _query(
        self, kind: RecordKind | None, key: bytes, *, on_reply: ReplyCallback | None = None
    ) -> list[tuple[Node, Response]]: ...


@functools.lru_cache(maxsize=4096)
def plausible_host(host: str, responder: str) -> bool:
    """Whether a node at ``responder`` can sensibly point us at ``host``.

    Never an unspecified, multicast, broadcast or reserved address; never another address
    family than the responder's (our socket has one); and loopback only from loopback, so a
    remote node cannot turn us against services on our own machine.
    """
    try:
        ip, seen_from = ipaddress.ip_address(host), ipaddress.ip_address(responder)
    except ValueError:
        return False
    if ip.version != seen_from.version:
        return False
    if ip.is_loopback:  # before is_reserved: ::1 lies in the reserved ::/8
        return seen_from.is_loopback
    return not (ip.is_unspecified or ip.is_multicast or ip.is_reserved)


class IterativeQuery:
    """One query towards ``target``; construct, then ``await run()`` once."""

    def __init__(
        self,
        target: bytes,
        request: RequestFn,
        *,
        seeds: Sequence[Node],
        bootstrap: Sequence[Address],
        ksize: int,
        alpha: int,
        local_id: bytes | None,
        on_reply: ReplyCallback | None = None,
    ) -> None:
        self.target = target
        self._request = request
        self._heap = NodeHeap(Node(target), ksize)
        self._heap.push(list(seeds))
        #: Every id ever pushed: NodeHeap's own membership test is a linear scan.
        self._seen_ids: set[bytes] = {node.id for node in seeds}
        self._bootstrap = list(bootstrap)
        self._alpha = alpha
        self._local_id = local_id
        self._on_reply = on_reply
        self._replies: dict[bytes, Response] = {}
        self._per_host: Counter[SourceKey] = Counter(
            source_key((node.ip, node.port)) for node in seeds
        )
        self._in_flight = 0
        self._tg: TaskGroup | None = None
        self.requests_sent = 0

    async def run(self) -> list[tuple[Node, Response]]:
        """Walk to the target; the k closest nodes that answered, closest first."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            if len(self._heap) == 0:
                self._ask_bootstrap()
            self._pump()
        if not self._replies and self._bootstrap:
            # Every known contact is gone (churn, a restart): start again from bootstrap.
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self._ask_bootstrap()
        return [(node, self._replies[node.id]) for node in self._heap if node.id in self._replies]

    def _ask_bootstrap(self) -> None:
        assert self._tg is not None
        bootstrap, self._bootstrap = self._bootstrap, []
        for address in bootstrap:
            if self.requests_sent >= MAX_QUERY_REQUESTS:
                return
            self.requests_sent += 1
            self._in_flight += 1
            self._tg.start_soon(self._ask, None, address)

    def _pump(self) -> None:
        assert self._tg is not None
        while self._in_flight < self._alpha and self.requests_sent < MAX_QUERY_REQUESTS:
            candidate = next(
                (node for node in self._heap if node.id not in self._heap.contacted), None
            )
            if candidate is None:
                return
            self._heap.mark_contacted(candidate)
            self.requests_sent += 1
            self._in_flight += 1
            self._tg.start_soon(self._ask, candidate, (candidate.ip, candidate.port))

    async def _ask(self, node: Node | None, address: Address) -> None:
        holds_slot = True

        def release_slot() -> None:
            # A silent node keeps retrying in the background but stops blocking a slot.
            nonlocal holds_slot
            if holds_slot:
                holds_slot = False
                self._in_flight -= 1
                self._pump()

        try:
            try:
                response = await self._request(address, release_slot)
            except DHTTimeoutError:
                if node is not None:
                    self._heap.remove([node.id])
                return
            self._take_reply(node, address, response)
        finally:
            release_slot()

    def _take_reply(self, node: Node | None, address: Address, response: Response) -> None:
        new_id = response.node_id
        if node is None and new_id not in self._seen_ids and new_id not in (None, self._local_id):
            # A bootstrap address that told us its id joins the candidates, already asked
            # (one known under that id was, or will be, asked that way).
            node = Node(new_id, address[0], address[1])
            self._seen_ids.add(node.id)
            self._heap.push(node)
            self._heap.mark_contacted(node)
        if node is not None:
            self._replies[node.id] = response
        # An ephemeral bootstrap node (no id) stores nothing, but its contacts still count.
        closer = [
            Node(contact.node_id, contact.host, contact.port)
            for contact in response.nodes
            if self._admit_contact(contact, address[0])
        ]
        if closer:
            self._heap.push(closer)
        self._deliver(address, response)

    def _admit_contact(self, contact: NodeContact, responder: str) -> bool:
        if contact.node_id in self._seen_ids or contact.node_id == self._local_id:
            return False
        if not plausible_host(contact.host, responder):
            return False
        host = source_key((contact.host, contact.port))
        if self._per_host[host] >= MAX_CONTACTS_PER_HOST:
            return False
        self._per_host[host] += 1
        self._seen_ids.add(contact.node_id)
        return True

    def _deliver(self, address: Address, response: Response) -> None:
        if self._on_reply is None:
            return
        try:
            self._on_reply(address, response)
        except Exception:
            logger.debug("query reply handler failed on a reply from %s", address, exc_info=True)


class TopicLookup:
    """A running lookup: verified :class:`PeerRecord` objects as they arrive, once per key.

    The query starts on first use (``async with``, ``async for`` or ``__anext__``) and runs
    in the DHT node's task group; iteration ends when it has finished. ``aclose()`` stops it.
    """

    def __init__(self, node: LookupNode, kind: RecordKind, topic: bytes) -> None:
        self._node = node
        self._kind = kind
        self._topic = topic
        self._send: MemoryObjectSendStream[PeerRecord] | None = None
        self._receive: MemoryObjectReceiveStream[PeerRecord] | None = None
        self._seen: set[bytes] = set()
        self._scope: anyio.CancelScope | None = None
        self._started = False
        self._closed = False

    def _start(self) -> None:
        if self._started or self._closed:
            return
        self._started = True
        # The streams exist only while the query does, so an unused lookup leaks nothing.
        send, receive = anyio.create_memory_object_stream[PeerRecord](math.inf)
        self._scope = anyio.CancelScope()
        try:
            self._node._spawn(self._run)  # raises DHTError when the node is closed
        except BaseException:
            send.close()
            receive.close()
            raise
        self._send, self._receive = send, receive

    async def _run(self) -> None:
        assert self._scope is not None and self._send is not None
        with self._send, self._scope:
            for host, blob in self._node._local_records(self._kind, self._topic):
                self._offer(host, blob)
            try:
                await self._node._query(self._kind, self._topic, on_reply=self._on_reply)
            except DHTError as exc:
                logger.debug("lookup ended early: %s", exc)

    def _on_reply(self, responder: Address, response: Response) -> None:
        if response.command not in (Command.LOOKUP, Command.FIND_PEER):
            return
        for host, blob in response.records:
            # The IP beside a record is the storing node's word, not signed: a record placed
            # where no peer can be (or on our own loopback, by a remote node) is a lie.
            if plausible_host(host, responder[0]):
                self._offer(host, blob)

    def _offer(self, host: str, blob: bytes) -> None:
        # Records repeat across replies: skip known keys before paying for a signature check.
        if blob[34:66] in self._seen:
            return
        try:
            record = decode_record(blob)
        except InvalidRecordError as exc:
            logger.debug("dropped a record in a lookup reply: %s", exc)
            return
        if (
            record.kind is not self._kind
            or record.topic != self._topic
            or record.expiry <= self._node.clock()
            or record.public_key in self._seen
        ):
            return
        self._seen.add(record.public_key)
        # A closed consumer means the query is being cancelled: drop quietly.
        assert self._send is not None
        with contextlib.suppress(anyio.BrokenResourceError):
            self._send.send_nowait(record.to_peer_record(host))

    def __aiter__(self) -> TopicLookup:
        return self

    async def __anext__(self) -> PeerRecord:
        self._start()
        if self._receive is None:
            raise StopAsyncIteration
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._receive.close()
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Stop the query (if still running) and drop what it has not delivered."""
        self._closed = True
        if self._scope is not None:
            self._scope.cancel()
        if self._receive is not None:
            self._receive.close()
        await anyio.lowlevel.checkpoint()

    async def __aenter__(self) -> TopicLookup:
        self._start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
