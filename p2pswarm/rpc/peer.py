"""RPCPeer: requests and one-way messages to one peer over its ``p2pswarm/rpc/1`` channel.

Our requests: an id from a per-peer counter (skipping ids in flight), a slot awaited with
the caller's timeout; on timeout or cancellation the slot is dropped, so its id is free and
a late reply finds nothing and is dropped. Their requests: the rate limiter decides first
(refuse, or ban through the swarm and close); admitted ones run as tasks of the Mux, at
most ``max_concurrent`` at once (beyond: an immediate ``busy`` error) and each within the
handler timeout (then a ``timeout`` error and the handler is cancelled), so neither a
flood nor a hanging handler grows memory or tasks.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

import anyio

from ..errors import (
    ChannelClosedError,
    RateLimitedError,
    RemoteError,
    RequestTimeoutError,
)
from ..mux import Channel, Codec, Mux
from .ratelimit import RateLimiter, Verdict
from .selection import PeerStats
from .wire import PROTOCOL, REQUEST, RESPONSE, Request, Response

__all__ = ("DEFAULT_TIMEOUT", "Handler", "RPCPeer", "Service")

logger = logging.getLogger("p2pswarm.rpc")

#: Seconds a request waits for its reply by default.
DEFAULT_TIMEOUT: Final = 10.0
_MAX_ID: Final = 2**32 - 1

#: ``handler(payload, peer) -> result``, sync or async. Raise RemoteError(code, message) to
#: send that error back; any other exception is sent as code ``internal`` (no details).
Handler = Callable[[Any, "RPCPeer"], Any]
#: (error code or None, error message, encoded result)
_Outcome = tuple[str | None, str, bytes]


class Service(Protocol):
    """What a peer needs of its :class:`~p2pswarm.rpc.RPC` (named here so that this module
    does not import the RPC's)."""

    codec: Codec[Any]
    limiter: RateLimiter
    handler_timeout: float
    max_concurrent: int
    handlers: dict[str, Handler]
    clock: Callable[[], float]

    def _ban(self, peer: RPCPeer) -> None: ...

    def _opened(self, peer: RPCPeer) -> None: ...

    def _closed(self, peer: RPCPeer) -> None: ...

    def _request_done(self, peer: RPCPeer, *, ok: bool) -> None: ...


class _Slot:
    __slots__ = ("done", "response")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.response: Response | None = None


class RPCPeer:
    """One peer's end of the request channel; made by :meth:`RPC.attach`."""

    def __init__(self, rpc: Service, mux: Mux, peer_info: Any = None) -> None:
        self.rpc = rpc
        self.mux = mux
        self.peer_info = peer_info
        self.public_key: bytes = mux.connection.remote_public_key
        self.stats = PeerStats(outbound=mux.connection.is_initiator)
        #: Requests of ours whose reply was dropped (it came after its timeout).
        self.late_replies = 0
        self._pending: dict[int, _Slot] = {}
        self._next_id = 1
        self._serving = 0
        channel = mux.create_channel(
            PROTOCOL,
            messages=[(REQUEST, self._on_request), (RESPONSE, self._on_response)],
            on_open=self._on_open,
            on_close=self._on_close,
        )
        if channel is None:
            raise ValueError(f"the connection already has a {PROTOCOL} channel")
        self.channel: Channel = channel
        channel.open()

    @property
    def opened(self) -> bool:
        return self.channel.opened and not self.channel.closed

    @property
    def in_flight(self) -> int:
        """Our requests waiting for this peer's reply."""
        return len(self._pending)

    # -- ours -------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        payload: Any = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (the request's own bound)
    ) -> Any:
        """Ask the peer; returns its handler's result (decoded with the RPC's codec).

        :raises ~p2pswarm.errors.RemoteError: its handler failed, or it knows no ``method``
        :raises ~p2pswarm.errors.RateLimitedError: it refused us for sending too much
        :raises ~p2pswarm.errors.RequestTimeoutError: no reply within ``timeout`` seconds
        :raises ~p2pswarm.errors.ChannelClosedError: the channel or connection closed
        """
        body = self.rpc.codec.encode(payload)
        slot = _Slot()
        id = self._allocate(slot)
        self.stats.in_flight += 1
        try:
            with anyio.move_on_after(timeout if timeout is not None else float("inf")):
                channel = self.channel
                if not channel.opened and not await channel.fully_opened():
                    raise ChannelClosedError(f"{PROTOCOL} channel to the peer is closed")
                # Queued for the Mux's writer: waiting for the reply bounds what is queued.
                channel.messages[0].send_nowait(Request(id, method, body))
                await slot.done.wait()
        finally:
            self.stats.in_flight -= 1
            self._pending.pop(id, None)
        response = slot.response
        if response is None:
            self._count(ok=False)
            if self.channel.closed:
                raise ChannelClosedError(f"{PROTOCOL} channel to the peer closed")
            raise RequestTimeoutError(f"no reply to {method!r} within {timeout} s")
        if response.error_code is not None:
            if response.error_code == "rate-limited":
                self._count(ok=False)
                raise RateLimitedError(response.error_code, response.error_message)
            self._count(ok=True)  # the peer answered: it is alive and well-behaved
            raise RemoteError(response.error_code, response.error_message)
        self._count(ok=True)
        return self.rpc.codec.decode(response.body)

    def _count(self, *, ok: bool) -> None:
        """One request ended: our selection counters, and the swarm's per-peer ones."""
        if ok:
            self.stats.ok += 1
        else:
            self.stats.failed += 1
        self.rpc._request_done(self, ok=ok)

    async def send(self, method: str, payload: Any = None) -> None:
        """A one-way message (no reply, no error report)."""
        body = self.rpc.codec.encode(payload)
        if not await self.channel.fully_opened():
            raise ChannelClosedError(f"{PROTOCOL} channel to the peer is closed")
        await self.channel.messages[0].send(Request(0, method, body))

    def _allocate(self, slot: _Slot) -> int:
        if len(self._pending) >= _MAX_ID:
            raise RuntimeError("every request id is in flight")
        id = self._next_id
        while id in self._pending:
            id = id + 1 if id < _MAX_ID else 1
        self._next_id = id + 1 if id < _MAX_ID else 1
        self._pending[id] = slot
        return id

    def _on_response(self, response: Response, channel: Channel) -> None:
        slot = self._pending.pop(response.id, None)
        if slot is None:
            self.late_replies += 1  # timed out or cancelled already: dropped
            return
        slot.response = response
        slot.done.set()

    # -- theirs -----------------------------------------------------------------------------

    def _on_request(self, request: Request, channel: Channel) -> None:
        rpc = self.rpc
        verdict = rpc.limiter.admit(self.public_key, rpc.clock())
        self.stats.penalty = rpc.limiter.penalty_of(self.public_key)
        if verdict is Verdict.BAN:
            rpc._ban(self)
            return
        if verdict is Verdict.REFUSE:
            self._reply_error(request.id, "rate-limited", "too many requests")
            return
        if self._serving >= rpc.max_concurrent:
            self._reply_error(request.id, "busy", "too many requests in progress")
            return
        handler = rpc.handlers.get(request.method)
        if handler is None:
            self._answer(request.id, ("unknown-method", request.method, b""))
            return
        try:
            payload = rpc.codec.decode(request.body)
        except Exception:
            self._answer(request.id, ("bad-request", "the payload does not decode", b""))
            return
        try:
            # Runs at once, in the dispatcher, up to its first await: a plain function
            # costs no task (and cannot hang); an awaitable is served as a task.
            result = handler(payload, self)
        except Exception as exc:
            self._answer(request.id, self._failure(request.method, exc))
            return
        if inspect.isawaitable(result):
            self._serving += 1
            self.mux.start_soon(self._serve, request, result)
        else:
            self._answer(request.id, self._encode(request.method, result))

    def _encode(self, method: str, result: Any) -> _Outcome:
        try:
            return None, "", self.rpc.codec.encode(result)
        except Exception as exc:
            return self._failure(method, exc)

    @staticmethod
    def _failure(method: str, exc: Exception) -> _Outcome:
        if isinstance(exc, RemoteError):
            return exc.code, exc.message, b""
        logger.error("handler of %r failed", method, exc_info=exc)
        return "internal", "the handler failed", b""

    def _answer(self, id: int, outcome: _Outcome) -> None:
        code, message, body = outcome
        if id == 0 or self.channel.closed:
            return
        if code is None:
            self.channel.messages[1].send_nowait(Response(id, body))
        else:
            self._reply_error(id, code, message)

    async def _serve(self, request: Request, awaitable: Awaitable[Any]) -> None:
        timeout = self.rpc.handler_timeout
        outcome: _Outcome = ("timeout", f"the handler took more than {timeout} s", b"")
        try:
            with anyio.move_on_after(timeout):
                try:
                    outcome = self._encode(request.method, await awaitable)
                except Exception as exc:
                    outcome = self._failure(request.method, exc)
            self._answer(request.id, outcome)
        finally:
            self._serving -= 1

    def _reply_error(self, id: int, code: str, message: str) -> None:
        if id == 0 or self.channel.closed:
            return
        self.channel.messages[1].send_nowait(Response(id, b"", code, message))

    # -- channel life -----------------------------------------------------------------------

    def _on_open(self, handshake: object, channel: Channel) -> None:
        self.rpc._opened(self)

    def _on_close(self, remote: bool, channel: Channel) -> None:
        for slot in self._pending.values():
            slot.done.set()  # no response: the waiter raises ChannelClosedError
        self.rpc._closed(self)
