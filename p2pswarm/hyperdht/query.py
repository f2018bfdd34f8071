"""The policy of dht-rpc's iterative query (``lib/query.js``), pure: whom to ask next, when to stop.

A query walks towards ``target``: it asks up to ``concurrency`` (10) nodes at once, keeps
the ``k`` (20) closest nodes that *replied with a valid id* (``closest_replies``), and adds
the closer nodes each reply names, but only those that would enter the current top k. It
stops when nothing is pending and nothing is in flight, or when everything in flight is
slow (its first send went unanswered) and the top k is full. A node that times out after
being referred is "down": each referrer gets a DOWN_HINT about it (the driver sends them,
rate limited). When a walk seeded only from given nodes (bootstrap, cached replies) gets
fewer than k/4 successes, it reseeds from the routing table once.

Hardening on top of JS: a node's id is always recomputed from its address (closer nodes
carry no ids), our own id is never added, and a walk visits at most ``max_visits`` nodes,
so lying replies that keep naming fresh "closer" nodes cannot make it walk forever.

The driver (:mod:`.iterative`) does the I/O; this module only decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Generic, TypeVar

from ..protocol.dht_rpc import node_id
from .rpc import Address, Peer

__all__ = ("DEFAULT_MAX_VISITS", "DownHint", "QueryPolicy")

R = TypeVar("R")

#: Nodes one walk may ask at most. A JS walk on the public network asks a few dozen.
DEFAULT_MAX_VISITS: Final = 500
#: Concurrency while a walk seeded from given nodes waits for its first answers.
SLOWDOWN_CONCURRENCY: Final = 3

#: (referrer, the node it named that turned out down)
DownHint = tuple[Address, Address]

_DONE: Final = "done"
_DOWN: Final = "down"


class QueryPolicy(Generic[R]):
    """State of one walk. ``R`` is whatever the driver keeps per reply."""

    def __init__(
        self,
        target: bytes,
        *,
        k: int = 20,
        concurrency: int = 10,
        own_id: bytes | None = None,
        max_visits: int = DEFAULT_MAX_VISITS,
    ) -> None:
        if len(target) != 32:
            raise ValueError("a query target is 32 bytes")
        self.target = target
        self.k = k
        self.concurrency = concurrency
        self.own_id = own_id
        self.max_visits = max_visits
        self._target_int = int.from_bytes(target, "big")
        #: (distance, id, reply) of the k closest replies, nearest first.
        self._closest: list[tuple[int, bytes, R]] = []
        self._pending: list[Peer] = []
        self._seen: dict[Address, list[Address] | str] = {}
        self._slow: set[Address] = set()
        self.inflight = 0
        self.visits = 0
        self.successes = 0
        self.errors = 0
        self.from_table = False
        self.slowdown = False
        self._reseeded = False

    # -- results --------------------------------------------------------------------------

    @property
    def closest_replies(self) -> list[R]:
        return [r for _, _, r in self._closest]

    def _distance(self, id: bytes) -> int:
        return int.from_bytes(id, "big") ^ self._target_int

    def is_closer(self, id: bytes) -> bool:
        """Would a reply from ``id`` enter the current top k?"""
        return len(self._closest) < self.k or self._distance(id) < self._closest[-1][0]

    # -- seeding ----------------------------------------------------------------------------

    def add_seed(self, peer: Peer) -> None:
        """A starting node (given, from the table or a bootstrap node)."""
        self._add_pending(Peer(peer.host, peer.port, node_id(peer.host, peer.port)), None)

    def mark_from_table(self) -> None:
        self.from_table = True

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _add_pending(self, peer: Peer, ref: Address | None) -> tuple[bool, list[DownHint]]:
        assert peer.id is not None
        address = peer.address
        refs = self._seen.get(address)
        closer = self.is_closer(peer.id)
        if refs == _DONE:
            return closer, []
        if refs == _DOWN:
            return closer, [] if ref is None else [(ref, address)]
        if isinstance(refs, list):
            if ref is not None and len(refs) < self.k:
                refs.append(ref)
            return closer, []
        if not closer:
            return False, []
        self._seen[address] = [] if ref is None else [ref]
        self._pending.append(peer)
        return True, []

    # -- stepping -----------------------------------------------------------------------------

    def next_visits(self) -> list[Peer]:
        """Nodes to ask now (each counts as in flight until :meth:`on_reply`/:meth:`on_error`)."""
        limit = (SLOWDOWN_CONCURRENCY if self.slowdown else self.concurrency) + len(self._slow)
        out: list[Peer] = []
        while self.inflight < limit and self._pending and self.visits < self.max_visits:
            peer = self._pending.pop()
            if peer.id is not None and not self.is_closer(peer.id):
                continue
            self.inflight += 1
            self.visits += 1
            out.append(peer)
        if not self.from_table and self.successes == 0 and self.errors == 0:
            self.slowdown = True
        if self.visits >= self.max_visits:
            self._pending.clear()
        return out

    def on_slow(self, address: Address) -> None:
        """The first send to ``address`` went unanswered: free its slot meanwhile."""
        self._slow.add(address)

    def _finish_visit(self, address: Address) -> None:
        self._slow.discard(address)
        self.inflight -= 1

    def on_reply(
        self,
        address: Address,
        from_id: bytes | None,
        ok: bool,
        closer_nodes: Iterable[tuple[str, int]],
        reply: R,
    ) -> list[DownHint]:
        """A reply from ``address`` (``ok``: error code 0); returns DOWN_HINTs to send."""
        self._finish_visit(address)
        self._seen[address] = _DONE
        if ok:
            self.successes += 1
        else:
            self.errors += 1
        if ok and from_id is not None and self.is_closer(from_id):
            self._push_closest(from_id, reply)
        hints: list[DownHint] = []
        for host, port in closer_nodes:
            id = node_id(host, port)
            if id == self.own_id:
                continue
            added, more = self._add_pending(Peer(host, port, id), address)
            hints += more
            if not added:
                break
        if not self.from_table and self.successes + self.errors >= self.concurrency:
            self.slowdown = False
        return hints

    def on_error(self, address: Address, timed_out: bool) -> list[DownHint]:
        """The request to ``address`` failed; after a timeout, hint its referrers."""
        refs = self._seen.get(address)
        hints: list[DownHint] = []
        if timed_out:
            self._seen[address] = _DOWN
            if isinstance(refs, list):
                hints = [(ref, address) for ref in refs]
        self._finish_visit(address)
        self.errors += 1
        return hints

    def _push_closest(self, id: bytes, reply: R) -> None:
        distance = self._distance(id)
        entries = self._closest
        for i, (d, other, _) in enumerate(entries):
            if other == id:
                return
            if distance < d:
                entries.insert(i, (distance, id, reply))
                break
        else:
            entries.append((distance, id, reply))
        del entries[self.k :]

    # -- ending -----------------------------------------------------------------------------

    def wants_table(self) -> bool:
        """True once if the walk is about to end, was seeded from given nodes only and
        had fewer than k/4 successes: reseed from the routing table then."""
        if self.from_table or self._reseeded or self.successes >= self.k / 4:
            return False
        self._reseeded = True
        return True

    def done(self) -> bool:
        if self._pending and self.visits < self.max_visits:
            return False
        return self.inflight == 0 or (
            len(self._slow) == self.inflight and len(self._closest) >= self.k
        )
