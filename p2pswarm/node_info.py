"""Node info: a small JSON object each peer publishes about itself, seen by its peers.

``swarm.set_info({"name": "kitchen", "version": 3})`` publishes ours; every connection
carries it in the handshake of a ``p2pswarm/info`` protomux channel, so the other side
has it as soon as the channel opens (``PeerInfo.info``), and a later ``set_info`` is
pushed again. ``swarm.on_info(callback)`` hears ``callback(peer_info, info)`` for the
first info of each connection and for every change.

Bounded both ways:

* an info is a JSON object of at most :data:`MAX_INFO_SIZE` bytes encoded; a bigger one is
  refused by ``set_info`` (``ValueError``) and, from a peer, drops its connection
  (:class:`~p2pswarm.errors.CodecError`), as does one that is not an object
  (:class:`~p2pswarm.errors.NodeInfoError`);
* our pushes are coalesced: at most one per :data:`MIN_PUSH_INTERVAL` per connection, the
  latest value winning, so ``set_info`` in a loop costs the peers a few messages;
* a peer's pushes go through a token bucket (:class:`UpdateLimiter`: a burst of
  :data:`BURST`, then :data:`RATE` per second); updates past it are dropped, and a peer
  that keeps pushing (:data:`MAX_EXCESS` drops in a row) loses its connection.

Call ``set_info`` before joining topics: connections opened earlier were not given to the
swarm's :class:`~p2pswarm.mux.SwarmMux` and carry no info channel.
"""

from __future__ import annotations

import json
import math
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import anyio

from .errors import NodeInfoError
from .mux import Channel, JSONCodec, Mux, SwarmMux
from .swarm._events import CallbackList
from .swarm._extensions import register_node_info
from .swarm.peer_info import PeerInfo

if TYPE_CHECKING:
    from .swarm.swarm import Swarm

__all__ = (
    "BURST",
    "MAX_EXCESS",
    "MAX_INFO_SIZE",
    "MIN_PUSH_INTERVAL",
    "PROTOCOL",
    "RATE",
    "NodeInfo",
    "UpdateLimiter",
    "check_info",
)

PROTOCOL: Final = "p2pswarm/info"
#: Largest info, as compact JSON in UTF-8.
MAX_INFO_SIZE: Final = 4096
#: Our pushes to one connection are at least this far apart (seconds).
MIN_PUSH_INTERVAL: Final = 1.0
#: A peer may push this many updates at once ...
BURST: Final = 10
#: ... and this many per second after that.
RATE: Final = 1.0
#: Updates dropped in a row past which the peer's connection is dropped.
MAX_EXCESS: Final = 100

_CODEC: Final = JSONCodec(max_size=MAX_INFO_SIZE, max_depth=16)

OnInfo = Callable[[PeerInfo, dict[str, Any]], Any]

_services: weakref.WeakKeyDictionary[Any, NodeInfo] = weakref.WeakKeyDictionary()


def check_info(info: object) -> dict[str, Any]:
    """A JSON-safe copy of ``info``, or ``TypeError``/``ValueError`` saying what is wrong."""
    if not isinstance(info, Mapping):
        raise TypeError(f"info must be a mapping, got {type(info).__name__}")
    try:
        data = json.dumps(dict(info), separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"info must be JSON-serializable: {exc}") from None
    if len(data) > MAX_INFO_SIZE:
        raise ValueError(f"info is {len(data)} bytes as JSON, above {MAX_INFO_SIZE}")
    copy = json.loads(data)
    assert isinstance(copy, dict)
    return copy


class UpdateLimiter:
    """A token bucket over an injected clock: ``allow(now)`` spends a token if one is left.

    Pure. Counts the updates refused in a row, so a caller can give up on a peer that does
    not slow down.
    """

    def __init__(self, *, burst: int = BURST, rate: float = RATE) -> None:
        self.burst = burst
        self.rate = rate
        self.tokens = float(burst)
        self.excess = 0
        self._last: float | None = None

    def allow(self, now: float) -> bool:
        if self._last is not None:
            self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
        self._last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.excess = 0
            return True
        self.excess += 1
        return False


class _Link:
    """Our side of one connection's info channel."""

    __slots__ = ("channel", "limiter", "pending", "sent")

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.limiter = UpdateLimiter()
        self.pending = anyio.Event()
        self.sent: dict[str, Any] | None = None


class NodeInfo:
    """The swarm's node info service (``NodeInfo.of(swarm)``; the swarm's ``set_info``,
    ``info`` and ``on_info`` use it). ``clock`` (monotonic seconds) drives the peers' rate
    limits; ``min_push_interval`` spaces our pushes."""

    def __init__(
        self,
        swarm: Swarm,
        *,
        clock: Callable[[], float] = anyio.current_time,
        min_push_interval: float = MIN_PUSH_INTERVAL,
    ) -> None:
        if swarm in _services:
            raise ValueError("this swarm already has a NodeInfo: use NodeInfo.of(swarm)")
        _services[swarm] = self
        self.swarm = swarm
        self.info: dict[str, Any] = {}
        self.dropped = 0
        self._clock = clock
        self._interval = min_push_interval
        self._links: dict[Channel, _Link] = {}
        self._callbacks: CallbackList[OnInfo] = CallbackList("info")
        SwarmMux.of(swarm).on_mux(self._setup)

    @classmethod
    def of(cls, swarm: Swarm, **options: Any) -> NodeInfo:
        service = _services.get(swarm)
        return service if service is not None else cls(swarm, **options)

    def set(self, info: Mapping[str, Any]) -> None:
        """Publish ``info`` (see :func:`check_info`); pushed to every connection."""
        self.info = check_info(info)
        for link in self._links.values():
            link.pending.set()

    def on_info(self, callback: OnInfo) -> OnInfo:
        """Register ``callback(peer_info, info)``, sync or async; usable as a decorator."""
        return self._callbacks.add(callback)

    def remove_callback(self, callback: OnInfo) -> bool:
        return self._callbacks.remove(callback)

    # -- channels ------------------------------------------------------------------------------

    def _setup(self, mux: Mux, peer: PeerInfo) -> None:
        self._open(mux)
        mux.pair(PROTOCOL, lambda _id: self._open(mux))

    def _open(self, mux: Mux) -> None:
        channel = mux.create_channel(
            PROTOCOL,
            user_data=mux,
            handshake=_CODEC,
            messages=[(_CODEC, self._on_update)],
            on_open=self._on_open,
            on_close=self._on_close,
        )
        if channel is not None:
            channel.open(self.info)

    def _on_open(self, handshake: object, channel: Channel) -> None:
        link = self._links[channel] = _Link(channel)
        link.sent = self.info
        self._received(channel, handshake)
        channel.mux.start_soon(self._pusher, link)

    def _on_close(self, remote: bool, channel: Channel) -> None:
        link = self._links.pop(channel, None)
        if link is not None:
            link.pending.set()  # let its pusher see the close and end

    def _on_update(self, value: object, channel: Channel) -> None:
        link = self._links.get(channel)
        if link is None:
            return
        if not link.limiter.allow(self._clock()):
            self.dropped += 1
            if link.limiter.excess > MAX_EXCESS:
                raise NodeInfoError("the peer keeps pushing node info past the rate limit")
            return
        self._received(channel, value)

    def _received(self, channel: Channel, value: object) -> None:
        if not isinstance(value, dict):
            raise NodeInfoError("node info must be a JSON object")
        mux = channel.user_data
        peer = mux.peer if isinstance(mux, Mux) else None
        if not isinstance(peer, PeerInfo):
            return
        peer.info = value
        self._callbacks.emit(self.swarm._spawn, peer, value)

    async def _pusher(self, link: _Link) -> None:
        """Push the newest info after each change, at most once per interval."""
        last_push = -math.inf
        while link.channel in self._links:
            await link.pending.wait()
            link.pending = anyio.Event()
            delay = last_push + self._interval - anyio.current_time()
            if delay > 0:
                await anyio.sleep(delay)  # changes meanwhile are folded into this push
            if link.channel not in self._links or link.sent == self.info:
                continue
            link.sent = self.info
            last_push = anyio.current_time()
            try:
                await link.channel.messages[0].send(self.info)
            except Exception:  # the channel or its connection closed: nothing to push to
                return


register_node_info(NodeInfo.of)
