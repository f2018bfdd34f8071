"""Which hole punch to try, and its limits (``hyperdht/lib/holepuncher.js``): pure policy.

Both ends classify their NAT (:class:`~.nat.NatAnalysis`) and tell each other in the
PEER_HOLEPUNCH rounds; OPEN counts as CONSISTENT. Then, as JS:

* CONSISTENT and CONSISTENT: both send a probe to every address the other reported, up to
  :data:`CONSISTENT_TRIES` rounds a second apart (unverified addresses every 4th round);
* we are CONSISTENT, the other RANDOM: probe random ports of its *verified* host (an
  address token it echoed), one every :data:`RANDOM_PROBE_INTERVAL`, up to
  :data:`RANDOM_PROBE_TRIES` (about 35 s);
* we are RANDOM, the other CONSISTENT: open up to :data:`BIRTHDAY_SOCKETS` sockets, each
  sending one low-TTL probe to its verified address (so our NAT maps many ports without
  the probes reaching its NAT), then keep every socket probing it in turn;
* both RANDOM: no punch (HOLEPUNCH_DOUBLE_RANDOMIZED_NATS), the relay's case.

Plus the rules of when to give up, the random-punch budget per node, and the LAN match.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from typing import Final

from ..protocol.hyperdht_connect import Firewall

__all__ = (
    "BIRTHDAY_SOCKETS",
    "CONSISTENT_TRIES",
    "HOLEPUNCH_TTL",
    "RANDOM_PROBE_INTERVAL",
    "RANDOM_PROBE_TRIES",
    "RandomPunchBudget",
    "Strategy",
    "choose_strategy",
    "coerce",
    "match_address",
    "random_port",
    "unstable",
)

BIRTHDAY_SOCKETS: Final = 256
#: The TTL of the probes that only open our own NAT's mapping (they die before theirs).
HOLEPUNCH_TTL: Final = 5
CONSISTENT_TRIES: Final = 10
CONSISTENT_INTERVAL: Final = 1.0
RANDOM_PROBE_TRIES: Final = 1750
RANDOM_PROBE_INTERVAL: Final = 0.02
#: Socket resets tried when our NAT looks unstable (``MAX_REOPENS``).
MAX_REOPENS: Final = 3
#: Random punches one node runs at once, and the pause after one (JS defaults).
RANDOM_PUNCH_LIMIT: Final = 1
RANDOM_PUNCH_INTERVAL: Final = 20.0


class Strategy(enum.Enum):
    CONSISTENT = "consistent"
    RANDOM_PROBES = "random-probes"
    BIRTHDAY = "birthday"
    NONE = "none"


def coerce(firewall: int) -> int:
    """OPEN punches as CONSISTENT (``coerceFirewall``)."""
    return Firewall.CONSISTENT if firewall == Firewall.OPEN else firewall


def unstable(local: int, remote: int) -> bool:
    """Our socket cannot punch as it is (``_unstable``): unknown, or random meeting random."""
    return (remote >= Firewall.RANDOM and local >= Firewall.RANDOM) or local == Firewall.UNKNOWN


def choose_strategy(local: int, remote: int, remote_verified: bool) -> Strategy:
    """The punch for our and the remote's firewall (``_punch``)."""
    local, remote = coerce(local), coerce(remote)
    if local == Firewall.CONSISTENT and remote == Firewall.CONSISTENT:
        return Strategy.CONSISTENT
    if not remote_verified:
        return Strategy.NONE
    if local == Firewall.CONSISTENT and remote >= Firewall.RANDOM:
        return Strategy.RANDOM_PROBES
    if local >= Firewall.RANDOM and remote == Firewall.CONSISTENT:
        return Strategy.BIRTHDAY
    return Strategy.NONE


def random_port(rng: random.Random | None = None) -> int:
    """A port in 1000..65535 (``randomPort``)."""
    r = (rng or random).random()
    return int(1000 + r * 64536)


def match_address(
    ours: Sequence[tuple[str, int]], theirs: Sequence[tuple[str, int]]
) -> tuple[str, int] | None:
    """The remote LAN address sharing the longest prefix (by octets, at least one) with
    one of ours; a /24 match wins at once (``matchAddress``)."""
    if not theirs:
        return None
    best_segment, best = 1, None
    for local in ours:
        a = local[0].split(".")
        for remote in theirs:
            b = remote[0].split(".")
            if a[0] == b[0]:
                if best_segment == 1:
                    best_segment, best = 2, remote
                if a[1] == b[1]:
                    if best_segment == 2:
                        best_segment, best = 3, remote
                    if a[2] == b[2]:
                        return remote
    return best


class RandomPunchBudget:
    """A node's random punches: at most ``limit`` at once, and ``interval`` seconds after
    the last one succeeded (``dht._randomPunches``, ``_lastRandomPunch``). Clock injected."""

    __slots__ = ("interval", "last", "limit", "running")

    def __init__(
        self, limit: int = RANDOM_PUNCH_LIMIT, interval: float = RANDOM_PUNCH_INTERVAL
    ) -> None:
        self.limit = limit
        self.interval = interval
        self.running = 0
        self.last = -float("inf")

    def exhausted(self, now: float) -> bool:
        return self.running >= self.limit or now - self.last < self.interval
