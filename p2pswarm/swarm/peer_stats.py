"""Per-peer traffic and request counters, as ``swarm.stats.peers``.

A connection counts its own bytes; when it closes, its totals are added to its peer's
record here, so the figures add up over reconnects. Requests (answered or failed) are
reported by the messaging layers above the connection. Bounded: past
:data:`MAX_TRACKED_PEERS`, the record of the peer seen longest ago without a live
connection is dropped. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol

__all__ = ("MAX_TRACKED_PEERS", "PeerStats", "PeerStatsTable")

#: Peers whose counters are kept at most.
MAX_TRACKED_PEERS: Final = 1024


class _Counted(Protocol):
    @property
    def remote_public_key(self) -> bytes: ...

    @property
    def bytes_read(self) -> int: ...

    @property
    def bytes_written(self) -> int: ...


@dataclass(slots=True)
class PeerStats:
    """What went between us and one peer, over all its connections so far.

    ``bytes_received``/``bytes_sent`` count the encrypted stream's payload bytes of closed
    and open connections; ``connections`` counts the ones opened, ``dials_failed`` our
    failed dials; ``requests_ok``/``requests_failed`` the requests made to the peer that
    were answered or that failed (an error reply, a timeout, the connection lost).
    """

    bytes_received: int = 0
    bytes_sent: int = 0
    connections: int = 0
    dials_failed: int = 0
    requests_ok: int = 0
    requests_failed: int = 0


class PeerStatsTable:
    """The counters of every tracked peer, plus the live connections still counting."""

    def __init__(self, limit: int = MAX_TRACKED_PEERS) -> None:
        self._closed: OrderedDict[bytes, PeerStats] = OrderedDict()
        self._live: dict[bytes, list[_Counted]] = {}
        self._limit = limit

    def _record(self, key: bytes) -> PeerStats:
        record = self._closed.get(key)
        if record is None:
            record = self._closed[key] = PeerStats()
            self._trim()
        else:
            self._closed.move_to_end(key)
        return record

    def _trim(self) -> None:
        while len(self._closed) > self._limit:
            for key in self._closed:
                if key not in self._live:
                    del self._closed[key]
                    break
            else:
                return

    def opened(self, conn: _Counted) -> None:
        key = conn.remote_public_key
        self._record(key).connections += 1
        self._live.setdefault(key, []).append(conn)

    def closed(self, conn: _Counted) -> None:
        key = conn.remote_public_key
        live = self._live.get(key, [])
        if conn not in live:
            return
        live.remove(conn)
        if not live:
            del self._live[key]
        record = self._record(key)
        record.bytes_received += conn.bytes_read
        record.bytes_sent += conn.bytes_written

    def dial_failed(self, key: bytes) -> None:
        self._record(key).dials_failed += 1

    def request_done(self, key: bytes, *, ok: bool) -> None:
        """A request to ``key`` ended: answered (``ok``) or failed."""
        record = self._record(key)
        if ok:
            record.requests_ok += 1
        else:
            record.requests_failed += 1

    def get(self, key: bytes) -> PeerStats | None:
        """A snapshot of ``key``'s counters, live connections included."""
        record = self._closed.get(key)
        if record is None:
            return None
        return _with_live(record, self._live.get(key, ()))

    def snapshot(self) -> dict[bytes, PeerStats]:
        """Every tracked peer's counters, live connections included (fresh copies)."""
        return {key: _with_live(rec, self._live.get(key, ())) for key, rec in self._closed.items()}


def _with_live(record: PeerStats, live: Iterable[_Counted]) -> PeerStats:
    out = PeerStats(**{name: getattr(record, name) for name in PeerStats.__slots__})
    for conn in live:
        out.bytes_received += conn.bytes_read
        out.bytes_sent += conn.bytes_written
    return out
