"""Responder: how a DHT node answers other nodes' requests.

This is the half of a node that strangers drive. Every datagram it sees was sent by
someone we have no reason to trust, so everything defensive lives here together: the
per-source request budget (:mod:`.ratelimit`), the reply bound for senders whose address
is unproven (:mod:`.amplification`), the token checks that guard stores, record
validation, and the rule that a requester enters the routing table only once its address
is proven. :class:`~.node.DHTNode` keeps the other half, its own requests and queries, and
the socket and task group both halves share; it hands this class exactly the state that
answering needs (routing table, record store, token issuer) plus a way to ping back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

from kademlia.node import Node

from ..errors import DHTError, InvalidRecordError
from ..peer_record import AddressKind
from .amplification import AMPLIFICATION_FACTOR, bound_reply
from .messages import (
    MAX_RECORDS_PER_REPLY,
    QUERY_COMMANDS,
    Command,
    NodeContact,
    Request,
    Response,
    Status,
)
from .ratelimit import RateLimit, SourceRateLimiter, source_key
from .records import (
    AnnounceRecord,
    RecordKind,
    Unannounce,
    decode_record,
    decode_unannounce,
    target_for,
)
from .routing import RoutingTable
from .storage import PutResult, RecordStore
from .tokens import TokenIssuer

__all__ = ("MAX_VERIFYING", "Responder", "stored_records")

logger = logging.getLogger(__name__)

Address = tuple[str, int]

#: Requesters being pinged back before they may enter the routing table, at most.
MAX_VERIFYING: Final = 64

_PUT_STATUS: Final = {
    PutResult.STORED: Status.OK,
    PutResult.REPLACED: Status.OK,
    PutResult.STALE: Status.STALE_SEQ,
    PutResult.EXPIRED: Status.EXPIRED,
}


def stored_records(
    store: RecordStore, kind: RecordKind, key: bytes, now: float
) -> tuple[tuple[str, bytes], ...]:
    """The (observed host, encoded record) pairs we hold under ``key``, as a reply carries them.

    A peer record lives under its own public key, so ``key`` is both topic and owner; a
    topic gives a sample of its records (at most what one reply may carry).
    """
    if kind is RecordKind.PEER:
        stored = store.get(kind, key, key, now)
        return () if stored is None else ((stored.host, stored.record.encode()),)
    return tuple(
        (s.host, s.record.encode()) for s in store.sample(kind, key, now, MAX_RECORDS_PER_REPLY)
    )


class Responder:
    """Answers requests from other nodes with what its node knows.

    ``ping`` asks an address for a reply (whose arrival adds the node there to the routing
    table); ``start`` runs a background task in the node's task group and returns False
    when the node is not running. ``wire_id`` is None for an ephemeral node, which answers
    but stores nothing and hands out no tokens.
    """

    def __init__(
        self,
        *,
        node_id: bytes,
        wire_id: bytes | None,
        ksize: int,
        clock: Callable[[], float],
        routing: RoutingTable,
        store: RecordStore,
        tokens: TokenIssuer,
        rate_limit: RateLimit | None,
        ping: Callable[[Address], Awaitable[Response]],
        start: Callable[[Callable[[Address], Coroutine[Any, Any, None]], Address], bool],
    ) -> None:
        self._node_id = node_id
        self._wire_id = wire_id
        self._ksize = ksize
        self._clock = clock
        self._routing = routing
        self._store = store
        self._tokens = tokens
        #: Budgets run on the monotonic clock: ``clock`` may be a test's frozen fake.
        self._limiter = SourceRateLimiter(rate_limit) if rate_limit is not None else None
        self._ping = ping
        self._start = start
        self._verifying: set[Address] = set()
        #: Replies not sent because the request could not pay for even a bare one.
        self.unpaid_requests = 0

    @property
    def admit(self) -> Callable[[Address], bool] | None:
        """The rate limit check to run before a request is decoded; None when unlimited."""
        return self._admit if self._limiter is not None else None

    def _admit(self, source: Address) -> bool:
        assert self._limiter is not None
        return self._limiter.allow(source_key(source), time.monotonic())

    def serve(self, request: Request, source: Address, size: int) -> bytes | None:
        """Answer, within the reflection budget of a sender that has not proven its address."""
        response = self._answer(request, source)
        data = response.encode()
        budget = size * AMPLIFICATION_FACTOR
        if len(data) <= budget or (
            request.token
            and request.command in QUERY_COMMANDS
            and self._tokens.check(source[0], request.token, self._clock())
        ):
            return data
        bounded = bound_reply(response, budget)
        if bounded is None:
            self.unpaid_requests += 1
            return None
        return bounded.encode()

    def _answer(self, request: Request, source: Address) -> Response:
        if request.node_id is not None and request.node_id != self._node_id:
            self._consider_requester(request, source)
        command = request.command
        if command is Command.PING:
            return Response(command, request.rid, source, self._wire_id)
        if command in (Command.FIND_NODE, Command.LOOKUP, Command.FIND_PEER):
            return self._answer_query(request, source)
        status = self._store_or_remove(request, source[0])
        return Response(command, request.rid, source, self._wire_id, status)

    def _consider_requester(self, request: Request, source: Address) -> None:
        """A persistent requester enters the routing table only once its address is proven.

        Source addresses can be forged: taking a request's id and address on trust lets
        anyone fill our buckets with contacts at addresses they do not own (and overwrite a
        real node's address under its id), which we would then hand to everyone who asks.
        A token we issued to that IP proves it; otherwise we ping the address back, and its
        reply (matched on rid and address) adds whoever really answers there.
        """
        assert request.node_id is not None
        if request.token and self._tokens.check(source[0], request.token, self._clock()):
            self._routing.add_contact(Node(request.node_id, source[0], source[1]))
            return
        if source in self._verifying or len(self._verifying) >= MAX_VERIFYING:
            return
        if self._routing.address_of(request.node_id) == source:
            return  # already known at this very address
        if not self._routing.has_room_for(request.node_id):
            return  # a full bucket: a ping would buy nothing (replies still teach us)
        if self._start(self._verify_requester, source):
            self._verifying.add(source)

    async def _verify_requester(self, source: Address) -> None:
        try:
            await self._ping(source)  # the reply adds the node (the node's reply handler)
        except DHTError:
            pass
        finally:
            self._verifying.discard(source)

    def _answer_query(self, request: Request, source: Address) -> Response:
        command = request.command
        target = request.key if command is Command.FIND_NODE else target_for(request.key)
        exclude = request.node_id
        neighbours = self._routing.find_neighbors(Node(target), self._ksize + 1)
        nodes = tuple(NodeContact(n.id, n.ip, n.port) for n in neighbours if n.id != exclude)[
            : self._ksize
        ]
        now = self._clock()
        # Every query reply carries a token: an announce walks with FIND_NODE (it has no
        # use for the records a LOOKUP would drag along) and then needs tokens to store.
        token = None if self._wire_id is None else self._tokens.issue(source[0], now)
        if command is Command.FIND_NODE:
            return Response(command, request.rid, source, self._wire_id, token=token, nodes=nodes)
        kind = RecordKind.TOPIC if command is Command.LOOKUP else RecordKind.PEER
        records = stored_records(self._store, kind, request.key, now)
        return Response(
            command, request.rid, source, self._wire_id, token=token, nodes=nodes, records=records
        )

    def _store_or_remove(self, request: Request, host: str) -> Status:
        """ANNOUNCE stores a signed record, UNANNOUNCE applies a signed removal.

        Both need a token we issued to ``host`` and a valid signature.
        """
        if self._wire_id is None:
            return Status.NOT_STORING
        now = self._clock()
        if not self._tokens.check(host, request.token, now):
            return Status.BAD_TOKEN
        try:
            message: AnnounceRecord | Unannounce = (
                decode_unannounce(request.payload)
                if request.command is Command.UNANNOUNCE
                else decode_record(request.payload)
            )
        except InvalidRecordError as exc:
            logger.debug("rejected an %s from %s: %s", request.command.name.lower(), host, exc)
            return Status.INVALID_RECORD
        if isinstance(message, Unannounce):
            self._store.remove(message, now)
            return Status.OK
        claimed = {a.host for a in message.addresses if a.kind is AddressKind.DIRECT}
        if claimed - {host}:
            # A direct address must be the sender's own IP, as we see it.
            return Status.ADDRESS_MISMATCH
        return _PUT_STATUS[self._store.put(message, host, now)]
