"""Round-trip tokens: proof that an announcer really receives datagrams at its source IP.

A storing node hands out ``BLAKE2b(ip, key=secret)`` in its query replies and accepts an
announce only with a token it issued to that IP recently (dht-rpc's scheme). A sender
spoofing someone else's IP never sees the token, so it cannot store records in their name.
Secrets rotate; the current and the previous one are both accepted, so a token stays good
for between one and two rotation periods. Pure: the time is an argument.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from typing import Final

__all__ = ("TOKEN_ROTATION", "TokenIssuer")

#: Seconds between secret rotations (dht-rpc rotates faster; announces follow their lookup
#: within milliseconds, so a minute only matters for a stalled announcer).
TOKEN_ROTATION: Final = 60.0


class TokenIssuer:
    """Issues and checks round-trip tokens bound to an IP address."""

    __slots__ = ("_current", "_previous", "_random", "_rotated_at", "rotation")

    def __init__(
        self,
        now: float,
        *,
        rotation: float = TOKEN_ROTATION,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.rotation = rotation
        self._random = random_bytes
        self._current = random_bytes(32)
        self._previous = random_bytes(32)
        self._rotated_at = now

    def _rotate(self, now: float) -> None:
        elapsed = now - self._rotated_at
        if elapsed < self.rotation:
            return
        # More than two periods idle: both old secrets are stale.
        self._previous = self._current if elapsed < 2 * self.rotation else self._random(32)
        self._current = self._random(32)
        self._rotated_at = now

    @staticmethod
    def _token(secret: bytes, host: str) -> bytes:
        return hashlib.blake2b(host.encode("ascii"), key=secret, digest_size=32).digest()

    def issue(self, host: str, now: float) -> bytes:
        """The token for ``host`` (the IP the request came from) at time ``now``."""
        self._rotate(now)
        return self._token(self._current, host)

    def check(self, host: str, token: bytes, now: float) -> bool:
        """True when ``token`` was issued to ``host`` under the current or previous secret."""
        self._rotate(now)
        return hmac.compare_digest(token, self._token(self._current, host)) or hmac.compare_digest(
            token, self._token(self._previous, host)
        )
