"""The swarm: :class:`Swarm`, its connection tasks, topic discovery and its pure policy.

* :mod:`.swarm`: the public :class:`Swarm` (lifecycle, join/leave, the public API);
  :mod:`._connections`: its dial/accept/watch tasks.
* :mod:`.discovery`: :class:`~.discovery.PeerDiscovery`, one topic's announce/lookup rounds.
* Pure, clock-injected policy (no I/O): :mod:`._pool` (whom to dial, which duplicate
  survives), :mod:`._policy`, :mod:`._retry`, :mod:`._queue`, :mod:`._connection_set`,
  :mod:`._flush`; :mod:`.peer_info` (what the application sees of a peer);
  :mod:`._handlers` and :mod:`._events` (callbacks).

It sits on the transports (:mod:`p2pswarm.transports`) and a discovery network
(:mod:`p2pswarm.networks`), and knows either only through its interface.
"""

from __future__ import annotations

from .swarm import Firewall as Firewall, Swarm as Swarm, SwarmStats as SwarmStats

__all__ = ("Firewall", "Swarm", "SwarmStats")
