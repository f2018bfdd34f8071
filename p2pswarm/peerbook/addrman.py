"""Which known peers to keep and to dial first: tried/new buckets against eclipse attacks.

This is Bitcoin Core's address manager idea (``addrman``), on p2pswarm's identities. A peer
is its public key plus the address it was last dialled at. Peers learned but never
connected sit in the **new** table; peers we connected to sit in the **tried** table. Both
tables are fixed arrays of small buckets, and where an entry may go is a keyed hash of
its network group (the IPv4 /16 or IPv6 /32 of its address) and, for new entries, of the
group of whoever told us about it:

* one source group can reach only :data:`NEW_BUCKETS_PER_SOURCE` of the new buckets, and
  one address group only :data:`TRIED_BUCKETS_PER_GROUP` of the tried buckets, so an
  attacker holding many addresses in a few networks fills a bounded share of the book,
  however much it sends;
* the hash key is a secret of this book (kept in the file), so nobody can aim at a slot;
* a slot taken by a healthy entry is not given to a newcomer (a new entry is dropped; a
  tried entry that succeeded recently keeps its place: "test before evict"), so a flood
  cannot push good peers out.

Everything here is pure: times (seconds since the epoch, since they must outlive restarts)
are arguments, and the caller persists the entries it reads back.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from ..keys import check_public_key, check_topic

__all__ = (
    "BUCKET_SIZE",
    "NEW",
    "NEW_BUCKETS",
    "NEW_BUCKETS_PER_SOURCE",
    "TRIED",
    "TRIED_BUCKETS",
    "TRIED_BUCKETS_PER_GROUP",
    "AddrMan",
    "KnownPeer",
    "network_group",
)

NEW: Final = 0
TRIED: Final = 1

#: Table shapes: 1,024 new and 256 tried entries at most.
NEW_BUCKETS: Final = 64
TRIED_BUCKETS: Final = 16
BUCKET_SIZE: Final = 16
#: How many new buckets one source group can reach (so at most 128 of its entries).
NEW_BUCKETS_PER_SOURCE: Final = 8
#: How many tried buckets one address group can reach (so at most 64 of its entries).
TRIED_BUCKETS_PER_GROUP: Final = 4

#: Topics remembered per peer (the ones it is fed back under after a restart).
MAX_TOPICS: Final = 8

#: A tried entry that succeeded this recently keeps its slot against a newcomer.
PROTECT_TRIED: Final = 4 * 3600.0
#: An entry not seen for this long is worthless.
HORIZON: Final = 30 * 24 * 3600.0
#: Failures after which a never-connected entry is worthless.
RETRIES: Final = 3
#: Failures since the last success after which any entry is worthless ...
MAX_FAILURES: Final = 10
#: ... when that success is older than this.
MIN_FAIL_WINDOW: Final = 7 * 24 * 3600.0


def network_group(host: str) -> str:
    """The network an address belongs to, for bucketing: ``"4:a.b"`` (the IPv4 /16),
    ``"6:xxxx:xxxx"`` (the IPv6 /32; IPv4-mapped addresses count as IPv4), or
    ``"name:<host>"`` for anything that is not an IP literal."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return f"name:{host.lower()}"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address):
        a, b = ip.packed[:2]
        return f"4:{a}.{b}"
    return "6:" + ip.packed[:4].hex()


@dataclass(slots=True)
class KnownPeer:
    """One peer in the book: where it was reachable, under which topics, how it went.

    Times are seconds since the epoch (0.0: never). ``table``/``bucket``/``position`` say
    where it sits (:data:`NEW` or :data:`TRIED`).
    """

    public_key: bytes
    host: str
    port: int
    source_group: str
    topics: list[bytes] = field(default_factory=list)
    first_seen: float = 0.0
    last_seen: float = 0.0
    last_try: float = 0.0
    last_success: float = 0.0
    successes: int = 0
    failures: int = 0
    table: int = NEW
    bucket: int = 0
    position: int = 0

    @property
    def group(self) -> str:
        return network_group(self.host)

    def terrible(self, now: float) -> bool:
        """Not worth keeping (Bitcoin's ``IsTerrible``): unseen for a month, never connected
        after :data:`RETRIES` tries, or failing :data:`MAX_FAILURES` times for a week. An
        entry tried in the last minute is never terrible (give it a chance to report)."""
        if self.last_try and now - self.last_try < 60.0:
            return False
        if self.last_seen and now - self.last_seen > HORIZON:
            return True
        if not self.last_success and self.failures >= RETRIES:
            return True
        return now - self.last_success > MIN_FAIL_WINDOW and self.failures >= MAX_FAILURES


def _hash(secret: bytes, *parts: str | bytes) -> int:
    h = hashlib.blake2b(digest_size=8, key=secret)
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(2, "little"))
        h.update(data)
    return int.from_bytes(h.digest(), "little")


class AddrMan:
    """The two tables. ``secret`` (16-64 bytes) keys every placement hash; keep it with the
    entries so the layout survives restarts. Mutating calls return the keys whose entries
    changed or went away, for the caller to persist."""

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or not 16 <= len(secret) <= 64:
            raise ValueError("secret must be 16 to 64 bytes")
        self._secret = secret
        self._entries: dict[bytes, KnownPeer] = {}
        self._slots: dict[tuple[int, int, int], bytes] = {}

    # -- placement ------------------------------------------------------------------------

    def new_bucket(self, group: str, source_group: str) -> int:
        spread = _hash(self._secret, "new-spread", group, source_group)
        return (
            _hash(self._secret, "new", source_group, str(spread % NEW_BUCKETS_PER_SOURCE))
            % NEW_BUCKETS
        )

    def tried_bucket(self, key: bytes, group: str) -> int:
        spread = _hash(self._secret, "tried-spread", key)
        return (
            _hash(self._secret, "tried", group, str(spread % TRIED_BUCKETS_PER_GROUP))
            % TRIED_BUCKETS
        )

    def position(self, table: int, bucket: int, key: bytes) -> int:
        return _hash(self._secret, "pos", str(table), str(bucket), key) % BUCKET_SIZE

    # -- reading ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[KnownPeer]:
        return iter(list(self._entries.values()))

    def get(self, key: bytes) -> KnownPeer | None:
        return self._entries.get(key)

    def count(self, table: int) -> int:
        return sum(1 for e in self._entries.values() if e.table == table)

    # -- changes ------------------------------------------------------------------------------

    def restore(self, entry: KnownPeer) -> bool:
        """Put back an entry read from storage, where it was; False (dropped) if its slot
        is taken or out of range (a file edited by hand, or a secret that changed)."""
        slot = (entry.table, entry.bucket, entry.position)
        buckets = TRIED_BUCKETS if entry.table == TRIED else NEW_BUCKETS
        if entry.table not in (NEW, TRIED) or not 0 <= entry.bucket < buckets:
            return False
        if slot in self._slots or entry.public_key in self._entries:
            return False
        expected = (
            self.tried_bucket(entry.public_key, entry.group)
            if entry.table == TRIED
            else self.new_bucket(entry.group, entry.source_group)
        )
        if entry.bucket != expected or entry.position != self.position(
            entry.table, entry.bucket, entry.public_key
        ):
            return False
        self._entries[entry.public_key] = entry
        self._slots[slot] = entry.public_key
        return True

    def add(
        self,
        public_key: bytes,
        host: str,
        port: int,
        *,
        now: float,
        source: str | None = None,
        topic: bytes | None = None,
    ) -> list[bytes]:
        """We heard of ``public_key`` at ``host:port`` (from ``source``'s address, or from
        the peer itself when None). A known peer gets its address, topic and ``last_seen``
        refreshed; a new one goes into its new bucket if the slot is free or holds a
        terrible entry, and is dropped otherwise."""
        key = check_public_key(public_key)
        if topic is not None:
            check_topic(topic)
        entry = self._entries.get(key)
        if entry is not None:
            entry.last_seen = max(entry.last_seen, now)
            if entry.table == NEW and (entry.host, entry.port) != (host, port):
                # A new entry's slot depends on its group: re-place it, or keep the old one.
                source_group = network_group(source) if source is not None else None
                moved = self._place_new(key, host, port, source_group, now, entry)
                if moved is None:
                    return []
                entry = moved
            elif entry.table == TRIED:
                entry.host, entry.port = host, port  # tried slots depend on the key only
            _add_topic(entry, topic)
            return [key]
        source_group = network_group(source) if source is not None else None
        entry = self._place_new(key, host, port, source_group, now, None)
        if entry is None:
            return []
        _add_topic(entry, topic)
        return [key]

    def _place_new(
        self,
        key: bytes,
        host: str,
        port: int,
        source_group: str | None,
        now: float,
        old: KnownPeer | None,
    ) -> KnownPeer | None:
        """Put ``key`` in its new slot (``source_group`` None: the peer told us itself)."""
        group = network_group(host)
        if source_group is None:
            source_group = group
        bucket = self.new_bucket(group, source_group)
        slot = (NEW, bucket, self.position(NEW, bucket, key))
        occupant_key = self._slots.get(slot)
        if occupant_key is not None and occupant_key != key:
            occupant = self._entries[occupant_key]
            if not occupant.terrible(now):
                return None
            self._remove(occupant_key)
        if key in self._entries:
            self._remove(key)
        entry = old or KnownPeer(key, host, port, source_group, first_seen=now)
        entry.host, entry.port, entry.source_group = host, port, source_group
        entry.last_seen = max(entry.last_seen, now)
        entry.table, entry.bucket, entry.position = slot
        self._entries[key] = entry
        self._slots[slot] = key
        return entry

    def attempt(self, public_key: bytes, *, now: float, ok: bool) -> list[bytes]:
        """A dial to a known peer was made: count a failure, or a success (see :meth:`good`)."""
        if ok:
            return self.good(public_key, now=now)
        entry = self._entries.get(public_key)
        if entry is None:
            return []
        entry.last_try = now
        entry.failures += 1
        return [public_key]

    def good(self, public_key: bytes, *, now: float) -> list[bytes]:
        """A connection to a known peer opened: count it and move the peer to tried.

        When its tried slot is taken by an entry that succeeded within
        :data:`PROTECT_TRIED`, that entry stays and this one remains in new (counted);
        otherwise the occupant goes back to new and this one takes the slot.
        """
        entry = self._entries.get(public_key)
        if entry is None:
            return []
        entry.last_try = entry.last_seen = entry.last_success = now
        entry.successes += 1
        entry.failures = 0
        changed = [public_key]
        if entry.table == TRIED:
            return changed
        bucket = self.tried_bucket(public_key, entry.group)
        slot = (TRIED, bucket, self.position(TRIED, bucket, public_key))
        occupant_key = self._slots.get(slot)
        if occupant_key is not None:
            occupant = self._entries[occupant_key]
            if now - occupant.last_success < PROTECT_TRIED and not occupant.terrible(now):
                return changed
            self._remove(occupant_key)
            changed.append(occupant_key)
            # Back to new, where it may still be found; dropped if that slot is held.
            self._place_new(
                occupant_key, occupant.host, occupant.port, occupant.source_group, now, occupant
            )
        self._remove(public_key)
        entry.table, entry.bucket, entry.position = slot
        self._entries[public_key] = entry
        self._slots[slot] = public_key
        return changed

    def forget(self, public_key: bytes) -> list[bytes]:
        """Drop a peer (it was banned, say)."""
        if public_key not in self._entries:
            return []
        self._remove(public_key)
        return [public_key]

    def _remove(self, key: bytes) -> None:
        entry = self._entries.pop(key)
        slot = (entry.table, entry.bucket, entry.position)
        if self._slots.get(slot) == key:
            del self._slots[slot]

    # -- choosing -------------------------------------------------------------------------------

    def candidates(
        self,
        *,
        now: float,
        limit: int,
        topic: bytes | None = None,
        exclude: Iterable[bytes] = (),
    ) -> list[KnownPeer]:
        """Up to ``limit`` peers to dial first after a restart, best first: tried peers
        (most recent success first) taken one network group at a time, so the first dials
        spread over as many networks as the book knows; then new peers, fewest failures
        first. Terrible entries, ``exclude`` and (given a ``topic``) peers not known under
        it are skipped."""
        skip = set(exclude)
        chosen: list[KnownPeer] = []
        for table in (TRIED, NEW):
            pool = [
                e
                for e in self._entries.values()
                if e.table == table
                and e.public_key not in skip
                and not e.terrible(now)
                and (topic is None or topic in e.topics)
            ]
            if table == TRIED:
                pool.sort(key=lambda e: (-e.last_success, e.public_key))
            else:
                pool.sort(key=lambda e: (e.failures, -e.last_seen, e.public_key))
            chosen.extend(_spread_by_group(pool))
            if len(chosen) >= limit:
                break
        return chosen[:limit]


def _add_topic(entry: KnownPeer, topic: bytes | None) -> None:
    if topic is None:
        return
    if topic in entry.topics:
        entry.topics.remove(topic)
    entry.topics.insert(0, topic)  # most recent first; the oldest falls off
    del entry.topics[MAX_TOPICS:]


def _spread_by_group(ordered: list[KnownPeer]) -> list[KnownPeer]:
    """Round-robin over network groups, each group's entries in the given order."""
    by_group: dict[str, list[KnownPeer]] = {}
    for entry in ordered:
        by_group.setdefault(entry.group, []).append(entry)
    queues = list(by_group.values())
    out: list[KnownPeer] = []
    depth = 0
    while len(out) < len(ordered):
        out.extend(queue[depth] for queue in queues if depth < len(queue))
        depth += 1
    return out
