"""What ``swarm.flush()`` waits for, as pure bookkeeping.

``flush()`` promises: every peer discovered so far has been *attempted*: its dial (or the
handshake it started with us) ended in an open connection or a failure, or it was skipped
(banned, firewalled, already connected). It does not wait for peers discovered later.

Each waiter snapshots the set of peers outstanding when it is registered (queued, being
dialled, or mid-handshake with us). Every time one of them is settled the swarm calls
:meth:`FlushTracker.settle`, which returns the waiters that have nothing left to wait for.
Sets rather than Hyperswarm's counter, so a peer settled twice, or never counted, cannot
make a flush resolve early or hang. When the swarm is saturated (``max_peers`` or
``max_client_connections`` reached) and no dial is in flight, queued peers cannot be
attempted until something closes, so every waiter resolves (:meth:`settle_all`).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ("FlushTracker",)


class FlushTracker:
    """Pending flushes as token -> set of outstanding peer keys."""

    __slots__ = ("_next_token", "_waiters")

    def __init__(self) -> None:
        self._waiters: dict[int, set[bytes]] = {}
        self._next_token = 0

    def register(self, outstanding: Iterable[bytes]) -> int | None:
        """Start waiting for ``outstanding``; None when there is nothing to wait for."""
        keys = set(outstanding)
        if not keys:
            return None
        token = self._next_token
        self._next_token += 1
        self._waiters[token] = keys
        return token

    def settle(self, key: bytes) -> list[int]:
        """``key`` was attempted or dropped; returns the tokens that are now complete."""
        done: list[int] = []
        for token, keys in list(self._waiters.items()):
            keys.discard(key)
            if not keys:
                del self._waiters[token]
                done.append(token)
        return done

    def settle_all(self) -> list[int]:
        """Complete every waiter (saturation, suspend, close); returns their tokens."""
        done = list(self._waiters)
        self._waiters.clear()
        return done

    def cancel(self, token: int) -> None:
        """Forget a waiter whose caller went away."""
        self._waiters.pop(token, None)

    def __len__(self) -> int:
        return len(self._waiters)
