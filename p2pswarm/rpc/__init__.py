"""Messages and requests over protomux channels: ``await rpc.request(method, payload)``.

::

    rpc = RPC(swarm)                      # before swarm.join(...): one channel per connection

    @rpc.handle("add")
    async def add(payload, peer):         # sync or async; raise RemoteError(code, msg)
        return payload["a"] + payload["b"]

    await rpc.request("add", {"a": 1, "b": 2})                 # a peer the policy picks
    await rpc.request("add", {...}, peer=public_key, timeout=5) # that peer
    await rpc.send("note", {...}, n=3)    # one-way, to 3 peers (half outbound/inbound)
    await rpc.broadcast("note", {...})    # one-way, to every connected peer
    peer = rpc.peer(public_key); await peer.request(...)       # an RPCPeer

Errors are typed: :class:`~p2pswarm.errors.RemoteError` (``code``, ``message``: the
peer's handler raised, timed out, or knows no such method),
:class:`~p2pswarm.errors.RateLimitedError`, :class:`~p2pswarm.errors.RequestTimeoutError`,
:class:`~p2pswarm.errors.NoPeersError`, :class:`~p2pswarm.errors.ChannelClosedError`.
The codec is pluggable (``RPC(swarm, codec=...)``; JSON by default). Peers that flood
are refused (``rate-limited``), penalised, and banned through the swarm
(:mod:`p2pswarm.rpc.ratelimit`); the wire is in :mod:`p2pswarm.rpc.wire`, the choice of
peers in :mod:`p2pswarm.rpc.selection`.
"""

from __future__ import annotations

from .peer import DEFAULT_TIMEOUT, Handler, RPCPeer
from .ratelimit import RateLimiter, Verdict
from .selection import PeerStats, select_for_request, select_for_send
from .service import DEFAULT_HANDLER_TIMEOUT, DEFAULT_MAX_CONCURRENT, RPC

__all__ = (
    "DEFAULT_HANDLER_TIMEOUT",
    "DEFAULT_MAX_CONCURRENT",
    "DEFAULT_TIMEOUT",
    "RPC",
    "Handler",
    "PeerStats",
    "RPCPeer",
    "RateLimiter",
    "Verdict",
    "select_for_request",
    "select_for_send",
)
