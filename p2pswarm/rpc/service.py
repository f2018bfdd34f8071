"""RPC: a handler registry and request/send/broadcast across a swarm's peers.

``RPC(swarm)`` registers, through :class:`~p2pswarm.mux.SwarmMux`, one ``p2pswarm/rpc/1``
channel on every connection of the swarm (create it before joining topics). Without a
swarm, :meth:`RPC.attach` puts the channel on any :class:`~p2pswarm.mux.Mux`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio

from ..errors import ChannelClosedError, NoPeersError, RPCError
from ..mux import JSON, Codec, Mux, SwarmMux
from .peer import DEFAULT_TIMEOUT, Handler, RPCPeer
from .ratelimit import RateLimiter
from .selection import PeerStats, select_for_request, select_for_send
from .wire import PROTOCOL

if TYPE_CHECKING:
    from ..swarm import Swarm

__all__ = ("DEFAULT_HANDLER_TIMEOUT", "DEFAULT_MAX_CONCURRENT", "RPC")

logger = logging.getLogger("p2pswarm.rpc")

#: Seconds a handler may take before the caller gets a ``timeout`` error.
DEFAULT_HANDLER_TIMEOUT: Final = 30.0
#: Requests of one peer handled at once; more get a ``busy`` error.
DEFAULT_MAX_CONCURRENT: Final = 32

H = TypeVar("H", bound=Handler)


class RPC:
    """Requests and messages to a swarm's peers. See :mod:`p2pswarm.rpc`."""

    def __init__(
        self,
        swarm: Swarm | None = None,
        *,
        codec: Codec[Any] = JSON,
        limiter: RateLimiter | None = None,
        handler_timeout: float = DEFAULT_HANDLER_TIMEOUT,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
        rng: random.Random | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.swarm = swarm
        self.codec = codec
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.handler_timeout = handler_timeout
        self.max_concurrent = max_concurrent
        self.rng = rng if rng is not None else random.Random()
        self.clock: Callable[[], float] = clock if clock is not None else anyio.current_time
        self.handlers: dict[str, Handler] = {}
        #: Peers whose channel is open, by public key.
        self.peers: dict[bytes, RPCPeer] = {}
        #: Peers banned for flooding (public keys), in order.
        self.banned: list[bytes] = []
        self._attached: dict[bytes, RPCPeer] = {}
        self._changed = anyio.Event()
        self._on_peers: list[Callable[[], Any]] = []
        if swarm is not None:
            SwarmMux.of(swarm).on_mux(self._setup)

    # -- handlers ---------------------------------------------------------------------------

    def handle(self, method: str, handler: H | None = None) -> Any:
        """Register ``handler(payload, peer)`` for ``method``; ``@rpc.handle("m")`` works too."""
        if handler is not None:
            self.handlers[method] = handler
            return handler

        def register(fn: H) -> H:
            self.handlers[method] = fn
            return fn

        return register

    # -- peers ------------------------------------------------------------------------------

    def attach(self, mux: Mux, peer_info: Any = None) -> RPCPeer:
        """Open the request channel on ``mux`` (before it runs, for deterministic pairing)."""
        peer = RPCPeer(self, mux, peer_info)
        self._attached[peer.public_key] = peer
        return peer

    def peer(self, public_key: bytes) -> RPCPeer | None:
        return self.peers.get(public_key)

    @property
    def stats(self) -> dict[bytes, PeerStats]:
        return {key: peer.stats for key, peer in self.peers.items()}

    def on_peers_changed(self, callback: Callable[[], Any]) -> Callable[[], Any]:
        """Register ``callback()`` for every peer whose channel opens or closes, so an app
        can react to who speaks RPC without polling :attr:`peers`."""
        self._on_peers.append(callback)
        return callback

    def _peers_changed(self) -> None:
        self._changed.set()
        for callback in list(self._on_peers):
            try:
                callback()
            except Exception:  # an app bug must not break the channel that opened
                logger.exception("an on_peers_changed callback failed")

    async def wait_for_peers(self, n: int = 1) -> None:
        """Return once at least ``n`` peers have the channel open."""
        while len(self.peers) < n:
            self._changed = anyio.Event()
            await self._changed.wait()

    # -- calls ------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        payload: Any = None,
        *,
        peer: bytes | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (the request's own bound)
        exclude: Iterable[bytes] = (),
    ) -> Any:
        """Request from ``peer`` (a public key), or from one the selection policy picks.

        :raises ~p2pswarm.errors.NoPeersError: no such peer, or none connected
        """
        target = self._pick(peer, exclude)
        return await target.request(method, payload, timeout=timeout)

    async def send(
        self, method: str, payload: Any = None, *, n: int = 1, exclude: Iterable[bytes] = ()
    ) -> list[bytes]:
        """A one-way message to ``n`` peers chosen by the policy; returns whom it reached."""
        excluded = set(exclude)
        keys = select_for_send(
            [k for k in self.peers if k not in excluded], self.stats, n, self.rng
        )
        return await self._send_to(keys, method, payload)

    async def broadcast(self, method: str, payload: Any = None) -> list[bytes]:
        """A one-way message to every connected peer; returns whom it reached."""
        return await self._send_to(list(self.peers), method, payload)

    async def _send_to(self, keys: list[bytes], method: str, payload: Any) -> list[bytes]:
        reached: list[bytes] = []

        async def one(key: bytes) -> None:
            peer = self.peers.get(key)
            if peer is None:
                return
            try:
                await peer.send(method, payload)
            except (
                RPCError,
                ChannelClosedError,
                anyio.BrokenResourceError,
                anyio.ClosedResourceError,
            ) as exc:
                logger.debug("send of %r to %s failed: %r", method, key.hex()[:8], exc)
            else:
                reached.append(key)

        async with anyio.create_task_group() as tg:
            for key in keys:
                tg.start_soon(one, key)
        return reached

    def _pick(self, peer: bytes | None, exclude: Iterable[bytes]) -> RPCPeer:
        if peer is not None:
            target = self.peers.get(peer)
            if target is None:
                raise NoPeersError(f"no open request channel to {peer.hex()[:16]}")
            return target
        excluded = set(exclude)
        key = select_for_request([k for k in self.peers if k not in excluded], self.stats, self.rng)
        if key is None:
            raise NoPeersError(f"no connected peer speaks {PROTOCOL}")
        return self.peers[key]

    # -- from the peers ---------------------------------------------------------------------

    def _setup(self, mux: Mux, peer_info: Any) -> None:
        self.attach(mux, peer_info)

    def _opened(self, peer: RPCPeer) -> None:
        self.peers[peer.public_key] = peer
        self._peers_changed()

    def _closed(self, peer: RPCPeer) -> None:
        if self.peers.get(peer.public_key) is peer:
            del self.peers[peer.public_key]
        if self._attached.get(peer.public_key) is peer:
            del self._attached[peer.public_key]
        self._peers_changed()

    def _request_done(self, peer: RPCPeer, *, ok: bool) -> None:
        """Count a finished request in ``swarm.stats.peers`` (requests_ok/requests_failed),
        which outlive the connection (and, with a peer book, the process)."""
        if self.swarm is not None:
            self.swarm.stats.per_peer.request_done(peer.public_key, ok=ok)

    def _ban(self, peer: RPCPeer) -> None:
        """A flooding peer: banned through the swarm (when there is one) and disconnected."""
        key = peer.public_key
        logger.info("banning %s for flooding requests", key.hex()[:16])
        self.banned.append(key)
        info = peer.peer_info
        if info is not None and hasattr(info, "ban"):
            info.ban()
        peer.channel.close()
        peer.mux.start_soon(peer.mux.connection.aclose)
