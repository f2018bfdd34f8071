"""A persistent peer book: known peers, their outcomes and bans, kept across restarts.

``Swarm(peer_book="peers.db")`` is all an application needs; :class:`PeerBook` is the
book itself (usable alone), :mod:`.addrman` the pure placement policy (Bitcoin Core's
tried/new buckets) and :mod:`.bans` the pure ban list.
"""

from __future__ import annotations

from .addrman import AddrMan as AddrMan, KnownPeer as KnownPeer, network_group as network_group
from .bans import DEFAULT_BAN_DURATION as DEFAULT_BAN_DURATION, Ban as Ban, BanList as BanList
from .book import PeerBook as PeerBook

__all__ = (
    "DEFAULT_BAN_DURATION",
    "AddrMan",
    "Ban",
    "BanList",
    "KnownPeer",
    "PeerBook",
    "network_group",
)
