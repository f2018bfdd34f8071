"""One connection per peer pair: the slots, and the rule both sides use to pick one (pure).

Every dial we start and every handshake we accept takes a *slot* keyed by the remote public
key before any byte of the application's flows; a slot is pending until the handshake
completes, then open. There is at most one slot per key, which is how the swarm never hands
an application two connections to the same peer, not even for a moment.

When a new connection meets an existing slot, :func:`resolve_duplicate` decides, and both
peers reach the same answer without talking to each other (Hyperswarm 4's rule):

1. An existing connection that has both read and written application bytes is *outdated*:
   the remote side evidently lost it and is reconnecting, so the new one wins.
2. Otherwise the connection dialled by the peer with the larger public key wins.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ("ConnectionSet", "Resolution", "Slot", "resolve_duplicate")

C = TypeVar("C")


class Resolution(enum.Enum):
    """What to do when a second connection to the same peer appears."""

    #: Keep the existing connection; refuse the new one.
    KEEP_EXISTING = "keep-existing"
    #: Close the existing connection (or abandon the pending dial); take the new one.
    REPLACE_EXISTING = "replace-existing"


def resolve_duplicate(
    *,
    local_key: bytes,
    remote_key: bytes,
    new_is_initiator: bool,
    existing_bytes_read: int,
    existing_bytes_written: int,
) -> Resolution:
    """Decide between an existing connection to ``remote_key`` and a new one.

    ``new_is_initiator`` says whether we dialled the new connection. The byte counts are the
    existing connection's post-handshake traffic (0 for a pending one).
    """
    if existing_bytes_read > 0 and existing_bytes_written > 0:
        return Resolution.REPLACE_EXISTING
    # The peer with the larger key is the one whose dial is expected to survive.
    expected_initiator = local_key > remote_key
    if new_is_initiator == expected_initiator:
        return Resolution.REPLACE_EXISTING
    return Resolution.KEEP_EXISTING


@dataclass(eq=False, slots=True)
class Slot(Generic[C]):
    """The one place a peer may have a connection: pending (dial or handshake) or open.

    ``superseded`` is set when the dedup rule gave the place to a newer connection; whoever
    owns a superseded slot closes its connection and must not report it.
    """

    remote_key: bytes
    is_initiator: bool
    connection: C | None = None
    superseded: bool = False
    retired: bool = False
    #: Topics the dialler's hello carried (accepting side only).
    topics: tuple[bytes, ...] = field(default=())

    @property
    def is_open(self) -> bool:
        """True once the handshake completed and the connection passed dedup."""
        return self.connection is not None and not self.superseded and not self.retired


class ConnectionSet(Generic[C]):
    """Slots by remote public key, with counts by direction and state.

    The count of dialled slots is kept as slots come and go (a slot's direction never
    changes), so the pool's limit checks on every dial decision are O(1), not a walk over
    every connection.
    """

    __slots__ = ("_initiated", "_slots")

    def __init__(self) -> None:
        self._slots: dict[bytes, Slot[C]] = {}
        self._initiated = 0

    def get(self, remote_key: bytes) -> Slot[C] | None:
        """The current slot for ``remote_key``, or None."""
        return self._slots.get(remote_key)

    def claim(self, remote_key: bytes, *, is_initiator: bool) -> Slot[C]:
        """Take the slot for ``remote_key``; any previous slot is marked superseded."""
        previous = self._slots.get(remote_key)
        if previous is not None:
            previous.superseded = True
            self._initiated -= previous.is_initiator
        slot: Slot[C] = Slot(remote_key, is_initiator)
        self._slots[remote_key] = slot
        self._initiated += is_initiator
        return slot

    def release(self, slot: Slot[C]) -> bool:
        """Remove ``slot`` if it is still the current one for its key; True if removed."""
        if self._slots.get(slot.remote_key) is slot:
            del self._slots[slot.remote_key]
            self._initiated -= slot.is_initiator
            return True
        return False

    def __contains__(self, remote_key: object) -> bool:
        return remote_key in self._slots

    def __len__(self) -> int:
        return len(self._slots)

    def __iter__(self) -> Iterator[Slot[C]]:
        return iter(list(self._slots.values()))

    def count(self, *, is_initiator: bool | None = None, pending: bool | None = None) -> int:
        """How many slots match: by direction (None: both) and state (None: both)."""
        if pending is None:
            if is_initiator is None:
                return len(self._slots)
            initiated = self._initiated
            return initiated if is_initiator else len(self._slots) - initiated
        return sum(
            1
            for slot in self._slots.values()
            if (is_initiator is None or slot.is_initiator == is_initiator)
            and (pending is None or (slot.connection is None) == pending)
        )
