"""A server's announce round, as ``hyperdht/lib/announcer.js`` does it: the three best.

A topic announce (``dht.announce``) stores the record at every one of the k closest nodes,
as ``hyperdht/index.js`` does. A *server* announcing its own key works differently in JS:
its announcer walks FIND_PEER towards ``H(public_key)`` and then announces only to the
first three of the closest replies (``pickBest``: ``closestReplies.slice(0, 3)``). Those
nodes become the server's relays: they hold its route and forward PEER_HANDSHAKEs to it, so
fewer of them means fewer requests per round and fewer nodes to ping between rounds, while
any client walking towards the same target still ends among them. A relay that did not
answer the ANNOUNCE with error 0 is simply left out (JS settles every commit and keeps the
ones that succeeded).

The next round is seeded from this round's closest nodes (``nodes=``), as JS's
``_closestNodes``, so a refresh needs few hops.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Final, NamedTuple, Protocol

import anyio

from ..errors import DHTError
from ..keys import KeyPair
from ..protocol.compact import IPv4Address
from ..protocol.hyperdht_messages import Announce, Command, Peer, encode_announce
from .iterative import Query
from .records import sign_announce
from .rpc import Address, Reply

__all__ = ("BEST_RELAYS", "Announced", "AnnouncerHost", "Relay", "announce_to_best", "pick_best")

#: How many of the closest replies a server announces to (``announcer.js`` pickBest).
BEST_RELAYS: Final = 3


class Relay(NamedTuple):
    """A node holding our route, and our address as that node saw it (``msg.to``)."""

    relay_address: Address
    peer_address: IPv4Address


class Announced(NamedTuple):
    """One round's outcome: the relays that took the record, and the walk's closest nodes
    (to seed the next round)."""

    relays: list[Relay]
    closest_nodes: list[Address]


class AnnouncerHost(Protocol):
    """What a round needs from its node (a :class:`~.dht.HyperDHT`)."""

    def query(
        self, target: bytes, command: int, *, nodes: Sequence[Address] | None = None
    ) -> Query: ...

    async def request(
        self,
        to: Address,
        command: int,
        *,
        target: bytes | None = None,
        value: bytes | None = None,
        token: bytes | None = None,
    ) -> Reply: ...


def pick_best(replies: Sequence[Reply], n: int = BEST_RELAYS) -> list[Reply]:
    """The replies a server announces to: the first ``n`` of the closest, nearest first."""
    return list(replies[:n])


async def announce_to_best(
    host: AnnouncerHost,
    target: bytes,
    key_pair: KeyPair,
    *,
    nodes: Sequence[Address] | None = None,
    best: int = BEST_RELAYS,
) -> Announced:
    """Walk FIND_PEER towards ``target``, then ANNOUNCE our (relay-less) record to the best
    ``best`` replies, each signed over that node's id and token. A failed walk or commit is
    not an error (JS ignores both); an empty ``relays`` says nobody took the record."""
    query = host.query(target, Command.FIND_PEER, nodes=nodes)
    with contextlib.suppress(DHTError):
        await query.finished()
    peer = Peer(key_pair.public_key)
    relays: list[Relay] = []

    async def commit(reply: Reply) -> None:
        if reply.token is None or reply.from_.id is None:
            return
        signature = sign_announce(key_pair, target, reply.from_.id, reply.token, peer)
        with contextlib.suppress(DHTError):
            res = await host.request(
                reply.from_.address,
                Command.ANNOUNCE,
                target=target,
                value=encode_announce(Announce(peer, None, signature)),
                token=reply.token,
            )
            if res.error == 0:
                relays.append(Relay(reply.from_.address, reply.to))

    async with anyio.create_task_group() as tg:
        for reply in pick_best(query.closest_replies, best):
            tg.start_soon(commit, reply)
    return Announced(relays, [p.address for p in query.closest_nodes])
