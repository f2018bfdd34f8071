"""Transactions of dht-rpc (``io.js``): requests out with retries, replies matched, replies sent.

This is the layer between the datagram codec (:mod:`p2pswarm.protocol.dht_rpc`) and the
node's logic. It owns no socket: it is given a ``send(data, address)`` callable, and the
node feeds it decoded messages, so a shared UDP socket (UDX) can carry it as well as the
node's own one.

- A request gets a u16 tid from a counter with a random start, and is sent up to
  ``retries + 1`` times (JS: 4 sends), ``timeout`` (1 s) apart; then it fails with
  :class:`~p2pswarm.errors.DHTTimeoutError`. Every send takes a slot of the congestion
  window (:mod:`.congestion`); when the window is full the send waits for the next drain.
- A reply is matched by tid. JS matches on the tid alone (a relayed PEER_HANDSHAKE is
  answered by a node we never wrote to); we also require the reply to come from the
  address we asked, unless the request was made with ``any_responder=True``.
- An incoming request is wrapped in :class:`IncomingRequest`, whose ``reply`` / ``error``
  / ``relay`` write the response as ``io.js`` does: our id only when we are persistent, a
  token (``H(host, secret)``) when the handler allows it, the closest nodes when the
  request had a target.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Final, NamedTuple

import anyio

from ..errors import DHTRequestError, DHTTimeoutError
from ..protocol.compact import IPv4Address
from ..protocol.dht_rpc import (
    ErrorCode,
    Request,
    Response,
    TokenSecrets,
    node_id,
)
from .congestion import DEFAULT_MAX_WINDOW, CongestionWindow

__all__ = (
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "MAX_INFLIGHT",
    "Address",
    "IncomingRequest",
    "Peer",
    "Reply",
    "Transactions",
)

logger = logging.getLogger(__name__)

Address = tuple[str, int]
#: Sends a datagram; never raises (UDP is lossy, a failed send is a lost packet).
Send = Callable[[bytes, Address], None]

DEFAULT_TIMEOUT: Final = 1.0
#: Resends after the first send (JS ``req.retries = 3``: 4 sends in all).
DEFAULT_RETRIES: Final = 3
#: Requests in flight at most (the tid space is 65536; JS has no bound).
MAX_INFLIGHT: Final = 16384
#: Drain ticks between token rotations (10 x 750 ms, as JS).
ROTATE_EVERY: Final = 10


class Peer(NamedTuple):
    """A node's address, with its id when it proved one (id == H(address))."""

    host: str
    port: int
    id: bytes | None = None

    @property
    def address(self) -> Address:
        return (self.host, self.port)


class Reply(NamedTuple):
    """A response to one of our requests, as dht-rpc hands it to its callers."""

    tid: int
    from_: Peer
    to: IPv4Address
    token: bytes | None
    closer_nodes: tuple[IPv4Address, ...]
    error: int
    value: bytes | None
    rtt: float


def verified_id(claimed: bytes | None, host: str, port: int) -> bytes | None:
    """``claimed`` if it is the id of (host, port), else None (``io.js validateId``)."""
    if claimed is None:
        return None
    expected = node_id(host, port)
    return expected if expected == claimed else None


class IncomingRequest:
    """A request from another node, and the means to answer it (``io.js Request``).

    ``token`` is set only when the request carried a token that we issued to its host
    (requests with a wrong one are answered INVALID_TOKEN before anyone sees them).
    """

    __slots__ = (
        "_rpc",
        "client",
        "command",
        "from_",
        "internal",
        "replied",
        "size",
        "target",
        "tid",
        "to",
        "token",
        "value",
    )

    def __init__(
        self, rpc: Transactions, message: Request, from_: Peer, size: int, client: bool = False
    ) -> None:
        self._rpc = rpc
        #: It arrived on the node's client socket (answers leave from the same socket).
        self.client = client
        self.tid = message.tid
        self.from_ = from_
        self.to = message.to
        self.token = message.token
        self.internal = message.internal
        self.command = message.command
        self.target = message.target
        self.value = message.value
        self.size = size
        self.replied = False

    def __repr__(self) -> str:
        kind = "internal" if self.internal else "command"
        return f"<IncomingRequest {kind} {self.command} tid={self.tid} from {self.from_.address}>"

    def reply(
        self,
        value: bytes | None = None,
        *,
        token: bool = True,
        closer_nodes: bool = True,
        to: Address | None = None,
    ) -> None:
        """Answer with ``value`` (JS ``req.reply``: token and closer nodes by default)."""
        self.send_reply(0, value, token=token, closer_nodes=closer_nodes, to=to)

    def error(
        self,
        code: int,
        *,
        token: bool = False,
        closer_nodes: bool = True,
        to: Address | None = None,
    ) -> None:
        """Answer with error ``code`` (JS ``req.error``)."""
        self.send_reply(code, None, token=token, closer_nodes=closer_nodes, to=to)

    def send_reply(
        self,
        error: int,
        value: bytes | None,
        *,
        token: bool,
        closer_nodes: bool,
        to: Address | None = None,
    ) -> None:
        destination = to if to is not None else self.from_.address
        closer: tuple[IPv4Address, ...] = ()
        if self.target is not None and closer_nodes:
            closer = tuple(self._rpc.closest(self.target))
        response = Response(
            tid=self.tid,
            to=IPv4Address(*destination),
            id=self._rpc.wire_id(),
            token=self._rpc.tokens.token(destination[0], 1) if token else None,
            closer_nodes=closer,
            error=error,
            value=value,
        )
        self.replied = True
        self._rpc.send_reply(response.encode(), destination, self)

    def relay(
        self,
        value: bytes | None,
        to: Address,
        *,
        send: Callable[[bytes, Address], None] | None = None,
    ) -> None:
        """Forward this request to ``to`` with the same tid, so that ``to`` answers the
        original requester directly (HyperDHT's PEER_HANDSHAKE / PEER_HOLEPUNCH relay).
        ``send``: from another socket (a hole puncher's, whose address ``to`` then sees)."""
        message = Request(
            tid=self.tid,
            to=IPv4Address(*to),
            command=self.command,
            internal=self.internal,
            id=self._rpc.wire_id(),
            token=None,
            target=self.target,
            value=value,
        )
        if send is not None:
            send(message.encode(), to)
            return
        self._rpc.relay(message.encode(), to, self)


class _Inflight:
    __slots__ = ("any_responder", "event", "reply", "sent_at", "to")

    def __init__(self, to: Address, any_responder: bool) -> None:
        self.to = to
        self.any_responder = any_responder
        self.event = anyio.Event()
        self.reply: Reply | None = None
        self.sent_at = 0.0


class Transactions:
    """Request/response bookkeeping of one node (see the module docstring)."""

    def __init__(
        self,
        send: Send,
        *,
        wire_id: Callable[[], bytes | None],
        closest: Callable[[bytes], Sequence[IPv4Address]],
        max_window: int = DEFAULT_MAX_WINDOW,
        send_reply: Callable[[bytes, Address, IncomingRequest], None] | None = None,
        relay: Callable[[bytes, Address, IncomingRequest], None] | None = None,
    ) -> None:
        self.send = send
        self.wire_id = wire_id
        self.closest = closest
        self._reply_hook = send_reply
        self._relay_hook = relay
        self.tokens = TokenSecrets()
        self.congestion = CongestionWindow(max_window)
        self.inflight: dict[int, _Inflight] = {}
        self._tid = int.from_bytes(os.urandom(2), "little")
        self._drained = anyio.Event()
        self._rotate_in = ROTATE_EVERY
        self.closed = False
        #: Counters for diagnostics and tests.
        self.stats = {"requests": 0, "responses": 0, "timeouts": 0, "retries": 0}

    # -- replies out ----------------------------------------------------------------------

    def send_reply(self, data: bytes, to: Address, request: IncomingRequest) -> None:
        if self.closed:
            return
        if self._reply_hook is not None:
            self._reply_hook(data, to, request)
        else:
            self.send(data, to)

    def relay(self, data: bytes, to: Address, request: IncomingRequest) -> None:
        if self.closed:
            return
        if self._relay_hook is not None:
            self._relay_hook(data, to, request)
        else:
            self.send(data, to)

    # -- requests out ---------------------------------------------------------------------

    def _next_tid(self) -> int:
        for _ in range(65536):
            tid = self._tid
            self._tid = (self._tid + 1) & 0xFFFF
            if tid not in self.inflight:
                return tid
        raise DHTRequestError("no free transaction id")  # unreachable below MAX_INFLIGHT

    def drain(self) -> None:
        """The 750 ms tick: rotate token secrets every 10th, free a congestion slot, wake
        senders waiting for room."""
        self._rotate_in -= 1
        if self._rotate_in == 0:
            self._rotate_in = ROTATE_EVERY
            self.tokens.rotate()
        self.congestion.drain()
        event, self._drained = self._drained, anyio.Event()
        event.set()

    async def _wait_for_room(self, force: bool) -> None:
        while not force and self.congestion.is_full():
            if self.closed:
                raise DHTRequestError("the node is closed")
            await self._drained.wait()
        if self.closed:
            raise DHTRequestError("the node is closed")

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
        force: bool = False,
        on_cycle: Callable[[], None] | None = None,
        send: Send | None = None,
    ) -> Reply:
        """Send a request and wait for its reply (whatever its ``error``).

        ``on_cycle`` is called once, when the first send goes unanswered (queries then
        count the request as slow and ask another node meanwhile). Raises
        :class:`DHTTimeoutError` after the last send, :class:`DHTRequestError` if the node
        closes or too many requests are in flight.
        """
        if self.closed:
            raise DHTRequestError("the node is closed")
        if len(self.inflight) >= MAX_INFLIGHT:
            raise DHTRequestError("too many requests in flight")
        tid = self._next_tid()
        pending = _Inflight(to, any_responder)
        self.inflight[tid] = pending
        self.stats["requests"] += 1
        data: bytes | None = None
        try:
            for attempt in range(retries + 1):
                await self._wait_for_room(force)
                if data is None:  # encoded after the wait: the wire id may have changed
                    data = Request(
                        tid,
                        IPv4Address(*to),
                        command,
                        internal,
                        self.wire_id(),
                        token,
                        target,
                        value,
                    ).encode()
                if attempt:
                    self.stats["retries"] += 1
                self.congestion.send()
                pending.sent_at = time.monotonic()
                (send or self.send)(data, to)
                with anyio.move_on_after(resend_after):
                    await pending.event.wait()
                if pending.reply is not None:
                    return pending.reply
                if self.closed:
                    raise DHTRequestError("the node is closed")
                if on_cycle is not None:
                    on_cycle()
                    on_cycle = None
            self.stats["timeouts"] += 1
            raise DHTTimeoutError(f"no reply from {to[0]}:{to[1]} after {retries + 1} sends")
        finally:
            if self.inflight.get(tid) is pending:
                del self.inflight[tid]
                if pending.reply is None:
                    self.congestion.recv()

    # -- replies in -----------------------------------------------------------------------

    def expects(self, tid: int) -> bool:
        return tid in self.inflight

    def on_response(self, message: Response, source: Address) -> Reply | None:
        """Match a decoded response; the Reply if a request of ours was waiting for it."""
        pending = self.inflight.get(message.tid)
        if pending is None or pending.reply is not None:
            return None
        if not pending.any_responder and pending.to != source:
            return None
        del self.inflight[message.tid]
        self.congestion.recv()
        self.stats["responses"] += 1
        host, port = source
        reply = Reply(
            tid=message.tid,
            from_=Peer(host, port, verified_id(message.id, host, port)),
            to=message.to,
            token=message.token,
            closer_nodes=message.closer_nodes,
            error=message.error,
            value=message.value,
            rtt=time.monotonic() - pending.sent_at,
        )
        pending.reply = reply
        pending.event.set()
        return reply

    # -- requests in ----------------------------------------------------------------------

    def incoming(
        self, message: Request, source: Address, size: int, client: bool = False
    ) -> IncomingRequest | None:
        """Wrap a decoded request; None (after answering INVALID_TOKEN) if its token is not
        one we issued to its host."""
        host, port = source
        from_ = Peer(host, port, verified_id(message.id, host, port))
        request = IncomingRequest(self, message, from_, size, client)
        if message.token is not None and not self.tokens.valid(host, message.token):
            request.token = None  # not a proof of anything: its reply is budgeted
            request.error(ErrorCode.INVALID_TOKEN, token=True)
            return None
        return request

    def close(self) -> None:
        """Fail every waiting request with :class:`DHTRequestError`."""
        if self.closed:
            return
        self.closed = True
        for pending in self.inflight.values():
            pending.event.set()
        self._drained.set()
