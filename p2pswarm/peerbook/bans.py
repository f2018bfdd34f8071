"""Bans that expire and outlive restarts: who is banned, until when, and why.

The swarm's own bans (:meth:`p2pswarm.PeerInfo.ban`, the firewall) last as long as the
swarm. A peer book keeps them, with an expiry, across restarts: a peer that misbehaved
yesterday is refused today before it costs a handshake. Pure: times are arguments
(seconds since the epoch), and the caller persists the changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ..keys import check_public_key

__all__ = ("DEFAULT_BAN_DURATION", "MAX_BANS", "Ban", "BanList")

#: How long a ban lasts unless told otherwise (24 hours).
DEFAULT_BAN_DURATION: Final = 24 * 3600.0
#: Bans kept at most; past it the ban that expires first goes.
MAX_BANS: Final = 10_000
#: Longest reason kept, in characters.
MAX_REASON: Final = 200


@dataclass(frozen=True, slots=True)
class Ban:
    """``public_key`` is refused until ``until`` (seconds since the epoch)."""

    public_key: bytes
    until: float
    reason: str = ""


class BanList:
    """Active bans by public key, bounded by :data:`MAX_BANS`."""

    def __init__(self, limit: int = MAX_BANS) -> None:
        self._bans: dict[bytes, Ban] = {}
        self._limit = limit

    def __len__(self) -> int:
        return len(self._bans)

    def bans(self) -> list[Ban]:
        return list(self._bans.values())

    def get(self, public_key: bytes) -> Ban | None:
        return self._bans.get(public_key)

    def is_banned(self, public_key: bytes, now: float) -> bool:
        ban = self._bans.get(public_key)
        return ban is not None and ban.until > now

    def ban(
        self,
        public_key: bytes,
        *,
        now: float,
        duration: float = DEFAULT_BAN_DURATION,
        reason: str = "",
        extend: bool = True,
    ) -> tuple[Ban | None, list[bytes]]:
        """Ban ``public_key`` for ``duration`` seconds from ``now``. An active ban is
        lengthened (never shortened), unless ``extend`` is False. Returns the ban in force
        and the keys whose bans went away to make room."""
        key = check_public_key(public_key)
        if not duration > 0:
            raise ValueError("duration must be > 0 seconds")
        until = now + duration
        old = self._bans.get(key)
        if old is not None and old.until > now and (not extend or old.until >= until):
            return old, []
        dropped: list[bytes] = []
        if old is None and len(self._bans) >= self._limit:
            first = min(self._bans.values(), key=lambda b: b.until)
            del self._bans[first.public_key]
            dropped.append(first.public_key)
        ban = self._bans[key] = Ban(key, until, str(reason)[:MAX_REASON])
        return ban, dropped

    def restore(self, ban: Ban) -> None:
        """Put back a ban read from storage (unbounded input is cut at the limit)."""
        if len(self._bans) < self._limit:
            self._bans[ban.public_key] = Ban(ban.public_key, ban.until, ban.reason[:MAX_REASON])

    def unban(self, public_key: bytes) -> bool:
        return self._bans.pop(public_key, None) is not None

    def expire(self, now: float) -> list[bytes]:
        """Drop the bans that ran out; their keys, for the caller to lift and persist."""
        gone = [key for key, ban in self._bans.items() if ban.until <= now]
        for key in gone:
            del self._bans[key]
        return gone

    def next_expiry(self) -> float | None:
        return min((b.until for b in self._bans.values()), default=None)
