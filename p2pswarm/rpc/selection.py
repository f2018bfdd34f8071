"""Which peer answers a request, which peers get a message: a pure policy (lisk-p2p's idea).

lisk-p2p sends a request to one peer picked among the connected ones and a message to a
selection balanced between outbound and inbound peers. Here, likewise, but with the
statistics a request/response layer has:

* **Prefer good peers.** A peer's score is its Laplace-smoothed success ratio
  ``(ok + 1) / (ok + failed + 2)`` less its rate-limit penalty; peers scoring at least
  :data:`GOOD_SCORE` are preferred, the rest used only when no good peer is left.
* **Spread load.** Among the preferred, the ones with the fewest requests in flight win,
  ties broken at random (``rng``), so equal peers share the load evenly.
* **Send to N.** :func:`select_for_send` takes about half outbound (dialled by us) and
  half inbound peers, as lisk-p2p's ``selectPeersForSend`` does, so a peer that filled our
  inbound slots cannot get every message.

No clock and no I/O: the caller passes the statistics and a ``random.Random``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ("GOOD_SCORE", "PeerStats", "score", "select_for_request", "select_for_send")

#: Peers scoring at least this are preferred (an untried peer scores 0.5).
GOOD_SCORE: Final = 0.5


@dataclass(slots=True)
class PeerStats:
    """What the request layer knows of one peer."""

    ok: int = 0
    failed: int = 0
    in_flight: int = 0
    #: 0 for a well-behaved peer, up to 1 as it nears a ban (from the rate limiter).
    penalty: float = 0.0
    #: True when we dialled it (outbound), False when it dialled us.
    outbound: bool = True


def score(stats: PeerStats) -> float:
    """The peer's preference score (higher is better)."""
    return (stats.ok + 1) / (stats.ok + stats.failed + 2) - stats.penalty


def select_for_request(
    candidates: Iterable[bytes], stats: Mapping[bytes, PeerStats], rng: random.Random
) -> bytes | None:
    """The peer to send a request to, or None when there is none."""
    keys = list(candidates)
    if not keys:
        return None
    default = PeerStats()
    good = [k for k in keys if score(stats.get(k, default)) >= GOOD_SCORE]
    pool = good or keys
    least = min(stats.get(k, default).in_flight for k in pool)
    lightest = [k for k in pool if stats.get(k, default).in_flight == least]
    if len(lightest) > 1 and not good:
        # Only poor peers: the best of them, then the lightest.
        best = max(score(stats.get(k, default)) for k in lightest)
        lightest = [k for k in lightest if score(stats.get(k, default)) == best]
    return rng.choice(lightest)


def select_for_send(
    candidates: Iterable[bytes], stats: Mapping[bytes, PeerStats], n: int, rng: random.Random
) -> list[bytes]:
    """Up to ``n`` distinct peers: half outbound, half inbound where both exist, good peers
    before poor ones, random within each."""
    if n <= 0:
        return []
    default = PeerStats()
    keys = list(candidates)
    rng.shuffle(keys)
    keys.sort(key=lambda k: score(stats.get(k, default)) < GOOD_SCORE)  # stable: good first
    outbound = [k for k in keys if stats.get(k, default).outbound]
    inbound = [k for k in keys if not stats.get(k, default).outbound]
    half = (n + 1) // 2
    take_out = min(len(outbound), max(half, n - len(inbound)))
    take_in = min(len(inbound), n - take_out)
    chosen = outbound[:take_out] + inbound[:take_in]
    return _interleave(chosen, rng)


def _interleave(keys: Sequence[bytes], rng: random.Random) -> list[bytes]:
    out = list(keys)
    rng.shuffle(out)
    return out
