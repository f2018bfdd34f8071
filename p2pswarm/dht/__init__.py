"""Topic discovery: a Kademlia DHT of signed, multi-value announce records.

:class:`DHTNode` is the only part that does I/O; the codec (:mod:`.messages`), records
(:mod:`.records`), storage (:mod:`.storage`), tokens, routing and NAT observation are pure.
"""

from __future__ import annotations

from .nat import NatStatus, NatType
from .node import DHTNode
from .query import TopicLookup
from .ratelimit import RateLimit
from .records import RecordKind, target_for
from .routing import RoutingState, load_routing_state, save_routing_state
from .testnet import Testnet, create_testnet

__all__ = (
    "DHTNode",
    "NatStatus",
    "NatType",
    "RateLimit",
    "RecordKind",
    "RoutingState",
    "Testnet",
    "TopicLookup",
    "create_testnet",
    "load_routing_state",
    "save_routing_state",
    "target_for",
)
