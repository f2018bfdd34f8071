"""The routing table of dht-rpc: 256-bit ids, k = 20, one row per shared-prefix length (pure).

A port of ``kademlia-routing-table``: row ``i`` holds the nodes whose id first differs from
ours at bit ``i``; rows keep their nodes sorted by id; a full row refuses a newcomer and
reports it (:attr:`RoutingTable.on_full_row`) so the node can ping the row's oldest entry
and swap it out if it is gone (dht-rpc's ``_onfullrow``). ``closest`` walks from the target's
row towards longer prefixes, then shorter ones, exactly as JS, so our FIND_NODE replies list
the same nodes a JS node would.

The kademlia package's buckets assume 160-bit ids, so this is our own (small) structure.
Next to it, :class:`RecentNodes` is dht-rpc's time-ordered set: the nodes by the last time
we heard from them, for "ping the oldest few" and for ``toArray``.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from ..protocol.compact import IPv4Address

__all__ = ("DEFAULT_K", "ID_BITS", "RecentNodes", "RoutingNode", "RoutingTable")

DEFAULT_K: Final = 20
ID_BITS: Final = 256


@dataclass(eq=False, slots=True)
class RoutingNode:
    """A node in the table; the tick counters are dht-rpc's (5 s ticks)."""

    id: bytes
    host: str
    port: int
    #: Our address as this node reported it, if it did.
    to: IPv4Address | None = None
    sampled: int = 0
    added: int = 0
    pinged: int = 0
    seen: int = 0
    down_hints: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


def _diff(a: bytes, b: bytes) -> int:
    """The row of ``a`` in a table whose id is ``b``: the index of the first differing bit."""
    x = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    return ID_BITS - 1 if x == 0 else ID_BITS - x.bit_length()


class RoutingTable:
    """``kademlia-routing-table`` for 32-byte ids."""

    __slots__ = ("_occupied", "_rows", "id", "k", "on_full_row", "size")

    def __init__(
        self,
        id: bytes,
        k: int = DEFAULT_K,
        on_full_row: Callable[[RoutingNode, list[RoutingNode]], None] | None = None,
    ) -> None:
        if len(id) != 32:
            raise ValueError("a routing table id is 32 bytes")
        if k < 1:
            raise ValueError("k must be positive")
        self.id = id
        self.k = k
        self.size = 0
        #: Called with the refused newcomer and the (full) row's nodes.
        self.on_full_row = on_full_row
        self._rows: list[list[RoutingNode] | None] = [None] * ID_BITS
        #: Bit ``i`` is set when row ``i`` holds a node: ``closest`` visits only those rows
        #: instead of all 256 (a small network fills a handful, and every FIND_NODE reply
        #: and every query seed asks for ``closest``).
        self._occupied = 0

    def __len__(self) -> int:
        return self.size

    def _find(self, row: list[RoutingNode], id: bytes) -> tuple[int, bool]:
        lo, hi = 0, len(row)
        while lo < hi:
            mid = (lo + hi) // 2
            other = row[mid].id
            if other == id:
                return mid, True
            if other < id:
                lo = mid + 1
            else:
                hi = mid
        return lo, False

    def add(self, node: RoutingNode) -> bool:
        """Insert (or replace the entry with the same id); False if its row is full."""
        i = _diff(node.id, self.id)
        row = self._rows[i]
        if row is None:
            row = self._rows[i] = []
        at, found = self._find(row, node.id)
        if found:
            row[at] = node
            return True
        if len(row) >= self.k:
            if self.on_full_row is not None:
                self.on_full_row(node, row)
            return False
        row.insert(at, node)
        self._occupied |= 1 << i
        self.size += 1
        return True

    def remove(self, id: bytes) -> bool:
        i = _diff(id, self.id)
        row = self._rows[i]
        if row is None:
            return False
        at, found = self._find(row, id)
        if not found:
            return False
        del row[at]
        if not row:
            self._occupied &= ~(1 << i)
        self.size -= 1
        return True

    def get(self, id: bytes) -> RoutingNode | None:
        row = self._rows[_diff(id, self.id)]
        if row is None:
            return None
        at, found = self._find(row, id)
        return row[at] if found else None

    def has(self, id: bytes) -> bool:
        return self.get(id) is not None

    def random(self) -> RoutingNode | None:
        if self.size == 0:
            return None
        n = int.from_bytes(os.urandom(4), "big") % self.size
        for row in self._rows:
            if row is None:
                continue
            if n < len(row):
                return row[n]
            n -= len(row)
        return None

    def closest(self, target: bytes, k: int | None = None) -> list[RoutingNode]:
        """Up to ``k`` nodes near ``target``, in the order JS lists them: the target's row,
        then the rows of shorter shared prefixes (descending), then longer ones (ascending)."""
        limit = self.k if k is None else k
        result: list[RoutingNode] = []
        if limit <= 0:
            return result
        rows = self._rows
        d = _diff(target, self.id)
        below = self._occupied & ((2 << d) - 1)
        while below:
            i = below.bit_length() - 1
            below ^= 1 << i
            row = rows[i]
            assert row
            result.extend(row[: limit - len(result)])
            if len(result) >= limit:
                return result
        above = self._occupied >> (d + 1)
        i = d + 1
        while above:
            skip = (above & -above).bit_length() - 1
            i += skip
            above >>= skip
            row = rows[i]
            assert row
            result.extend(row[: limit - len(result)])
            if len(result) >= limit:
                return result
            above >>= 1
            i += 1
        return result

    def nodes(self) -> list[RoutingNode]:
        return self.closest(self.id, self.size)

    def __iter__(self) -> Iterator[RoutingNode]:
        return iter(self.nodes())


class RecentNodes:
    """Nodes by the time we last heard from them, oldest first (``time-ordered-set``)."""

    __slots__ = ("_nodes",)

    def __init__(self) -> None:
        self._nodes: OrderedDict[int, RoutingNode] = OrderedDict()

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node: RoutingNode) -> bool:
        return id(node) in self._nodes

    def add(self, node: RoutingNode) -> None:
        """Insert ``node``, or move it to the newest end."""
        self._nodes.pop(id(node), None)
        self._nodes[id(node)] = node

    def remove(self, node: RoutingNode) -> None:
        self._nodes.pop(id(node), None)

    def oldest(self, n: int) -> list[RoutingNode]:
        out: list[RoutingNode] = []
        for node in self._nodes.values():
            if len(out) >= n:
                break
            out.append(node)
        return out

    def latest(self, n: int) -> list[RoutingNode]:
        out: list[RoutingNode] = []
        for node in reversed(self._nodes.values()):
            if len(out) >= n:
                break
            out.append(node)
        return out

    def newest_first(self) -> list[RoutingNode]:
        return list(reversed(self._nodes.values()))
