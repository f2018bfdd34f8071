"""The routing table: kademlia's k-buckets, without its asyncio, plus JSON persistence.

``kademlia.routing`` does the bucket bookkeeping well (k-buckets of 160-bit ids, splits,
replacement lists), so it is reused. Two things are replaced in a subclass:

* a full bucket makes the base class ping its oldest node with
  ``asyncio.ensure_future(protocol.call_ping(...))``, which exists only on asyncio; here the
  ping is handed to a callback (the DHT node starts it in its own task group, so it works on
  trio too, and a dead head is evicted in favour of a replacement);
* ``find_neighbors`` walks buckets in index order and stops after k nodes, which misses
  closer nodes when k exceeds a bucket (the flaw hivemind's audit found); here every known
  node is ranked by XOR distance. Tables hold at most a few thousand nodes, so that is cheap.

Routing state is saved as JSON (never pickle) and written atomically.
"""

from __future__ import annotations

import heapq
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from kademlia.node import Node
from kademlia.routing import RoutingTable as _KademliaRoutingTable

from .._files import write_atomically
from ..errors import DHTError
from .messages import NODE_ID_SIZE, NodeContact, encode_host

__all__ = (
    "RoutingState",
    "RoutingTable",
    "contacts_of",
    "load_routing_state",
    "save_routing_state",
)

STATE_FILE_TYPE: Final = "p2pswarm-dht-routing"
STATE_FILE_VERSION: Final = 1
MAX_STATE_FILE_SIZE: Final = 1 << 20
MAX_SAVED_NODES: Final = 1000


class _PingAdapter:
    """What the base class expects as its ``protocol``: only ``call_ping(node)`` is used."""

    __slots__ = ("_ping",)

    def __init__(self, ping: Callable[[Node], None]) -> None:
        self._ping = ping

    def call_ping(self, node: Node) -> None:
        self._ping(node)


class RoutingTable(_KademliaRoutingTable):  # type: ignore[misc]
    """k-buckets around ``node_id``. ``ping_head`` is called (synchronously) with the
    oldest node of a full bucket; its owner should ping it and :meth:`remove_contact` it if
    it does not answer, which promotes a replacement node."""

    def __init__(self, node_id: bytes, ksize: int, ping_head: Callable[[Node], None]) -> None:
        if len(node_id) != NODE_ID_SIZE:
            raise ValueError(f"node id must be {NODE_ID_SIZE} bytes")
        super().__init__(_PingAdapter(ping_head), ksize, Node(node_id))

    def add_contact(self, node: Node) -> None:
        """Insert or refresh ``node``; never the local node itself."""
        if node.id == self.node.id:
            return
        index = self.get_bucket_for(node)
        bucket = self.buckets[index]
        if bucket.add_node(node):
            return
        # Section 4.2 of the paper: split if the bucket covers our own id, or its depth
        # is not a multiple of 5; otherwise the new node waits as a replacement.
        if bucket.has_in_range(self.node) or bucket.depth() % 5 != 0:
            self.split_bucket(index)
            self.add_contact(node)
        else:
            self.protocol.call_ping(bucket.head())

    def contains(self, node_id: bytes) -> bool:
        bucket = self.buckets[self.get_bucket_for(Node(node_id))]
        return node_id in bucket.nodes

    def has_room_for(self, node_id: bytes) -> bool:
        """Whether :meth:`add_contact` would take ``node_id`` in (not just queue it)."""
        bucket = self.buckets[self.get_bucket_for(Node(node_id))]
        return (
            node_id in bucket.nodes
            or len(bucket) < bucket.ksize
            or bucket.has_in_range(self.node)
            or bucket.depth() % 5 != 0
        )

    def address_of(self, node_id: bytes) -> tuple[str, int] | None:
        """Where the contact with ``node_id`` is, or None when it is unknown."""
        node = self.buckets[self.get_bucket_for(Node(node_id))].nodes.get(node_id)
        return None if node is None else (node.ip, node.port)

    def all_nodes(self) -> list[Node]:
        return [node for bucket in self.buckets for node in bucket.nodes.values()]

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self.buckets)

    def find_neighbors(
        self, node: Node, k: int | None = None, exclude: Node | None = None
    ) -> list[Node]:
        """The ``k`` known nodes closest to ``node`` by XOR distance, closest first."""
        k = k or self.ksize
        target = node.long_id
        candidates = (
            n
            for n in self.all_nodes()
            if n.id != node.id and (exclude is None or not n.same_home_as(exclude))
        )
        return heapq.nsmallest(k, candidates, key=lambda n: n.long_id ^ target)


@dataclass(frozen=True, slots=True)
class RoutingState:
    """What survives a restart: the node's id and the contacts it knew."""

    node_id: bytes
    nodes: tuple[NodeContact, ...]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(contact.host, contact.port) for contact in self.nodes]


def save_routing_state(path: str | os.PathLike[str], state: RoutingState) -> None:
    """Write ``state`` as JSON, atomically (a crash leaves the old file or the new one)."""
    document = {
        "type": STATE_FILE_TYPE,
        "version": STATE_FILE_VERSION,
        "node_id": state.node_id.hex(),
        "nodes": [
            {"id": c.node_id.hex(), "host": c.host, "port": c.port}
            for c in state.nodes[:MAX_SAVED_NODES]
        ],
    }
    data = (json.dumps(document, indent=1) + "\n").encode("ascii")
    write_atomically(path, data)


def _contact(entry: Any) -> NodeContact:
    if not isinstance(entry, dict):
        raise ValueError("node entry is not an object")
    node_id = bytes.fromhex(entry["id"])
    host, port = entry["host"], entry["port"]
    if len(node_id) != NODE_ID_SIZE:
        raise ValueError("node id has the wrong length")
    if not isinstance(host, str) or not isinstance(port, int) or not 0 < port <= 0xFFFF:
        raise ValueError("bad node address")
    encode_host(host)  # an IP literal, or ValueError
    return NodeContact(node_id, host, port)


def load_routing_state(path: str | os.PathLike[str]) -> RoutingState:
    """Read a file written by :func:`save_routing_state`, or raise DHTError saying why not."""
    path = Path(path)
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_STATE_FILE_SIZE + 1)
    except OSError as exc:
        raise DHTError(f"cannot read routing state {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_STATE_FILE_SIZE:
        raise DHTError(f"{path} is not a routing state file (too large)")
    try:
        document = json.loads(raw.decode("ascii"))
        if not isinstance(document, dict) or document.get("type") != STATE_FILE_TYPE:
            raise ValueError("not a routing state document")
        if document.get("version") != STATE_FILE_VERSION:
            raise ValueError(f"unsupported version {document.get('version')!r}")
        node_id = bytes.fromhex(document["node_id"])
        if len(node_id) != NODE_ID_SIZE:
            raise ValueError("node id has the wrong length")
        entries = document["nodes"]
        if not isinstance(entries, list):
            raise ValueError("nodes is not a list")
        nodes = tuple(_contact(entry) for entry in entries[:MAX_SAVED_NODES])
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError) as exc:
        # RecursionError: json gives up on deeply nested arrays that way.
        raise DHTError(f"{path} is not a valid routing state file: {exc!r:.200}") from None
    return RoutingState(node_id, nodes)


def contacts_of(nodes: Iterable[Node]) -> tuple[NodeContact, ...]:
    return tuple(NodeContact(node.id, node.ip, node.port) for node in nodes)
