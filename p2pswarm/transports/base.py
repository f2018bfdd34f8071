"""What a transport is, for the swarm: the :class:`Dialer` and :class:`Transport` interfaces.

A transport carries bytes between two peers (TCP today, UDX next). Its listener yields
connected byte streams that the handshake pump (:mod:`._handshake`) turns into
:class:`~p2pswarm.connection.Connection` objects, and its :class:`Dialer` turns a peer's
record into such a connection. Later ways of reaching a peer behind a NAT (a coordinated
simultaneous open, a blind relay through a third peer) are further ``Dialer``
implementations; a composite dialer tries them in order and collects each one's
:class:`~p2pswarm.errors.DialError` reasons, and a relay sets ``relayed=True`` on the
connection it returns. Swarm policy never needs to know which one succeeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import anyio.abc

from ..connection import Connection
from ..keys import KeyPair
from ..peer_record import PeerRecord

__all__ = ("Dialer", "Transport")


class Dialer(Protocol):
    """Turns a peer's record into an authenticated connection, or says why it could not.

    Implementations raise :class:`~p2pswarm.errors.DialError` with one reason per address
    or strategy tried. They never return a connection to a key other than
    ``record.public_key`` (the IK handshake guarantees it).
    """

    async def dial(
        self, record: PeerRecord, *, key_pair: KeyPair, topics: Sequence[bytes] = ()
    ) -> Connection: ...


class Transport(Protocol):
    """Listens for a peer's raw byte streams, to be handshaken by :mod:`._handshake`.

    The swarm listens through one (TCP's today; one per transport once there are more).
    What ``listen`` yields are plain (unencrypted) streams whose ``remote_address``
    attribute names the peer.
    """

    async def listen(
        self, *, local_host: str, local_port: int = 0
    ) -> anyio.abc.Listener[anyio.abc.SocketStream]: ...
