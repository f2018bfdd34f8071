"""Gossip: ``broadcast(message)`` reaching every peer of a topic across a partial mesh.

::

    gossip = Gossip(swarm, topic)              # before joining the topic
    swarm.join(topic)

    @gossip.on_message
    def show(message: GossipMessage) -> None:
        print(message.origin.hex()[:8], message.payload)

    await gossip.broadcast(b"hello, everyone")

Messages are signed by their origin, carry a hop limit, and are delivered once per peer
(duplicate suppression with a seen-cache bounded in time and count, see :mod:`.router`).
The wire is :mod:`p2pswarm.protocol.gossip`, over protomux channels (:mod:`p2pswarm.mux`).
"""

from __future__ import annotations

from ._gossip import Gossip as Gossip, GossipMessage as GossipMessage, GossipStats as GossipStats
from .router import DEFAULT_HOPS as DEFAULT_HOPS, WINDOW as WINDOW

__all__ = ("DEFAULT_HOPS", "WINDOW", "Gossip", "GossipMessage", "GossipStats")
