"""How a swarm makes connections and hands them out: dial, accept, admit, watch.

Every decision is the pool's (:class:`~p2pswarm.swarm._pool.PeerPool`: whom to dial, which of two
connections to one peer survives) or the firewall's; these functions do the I/O around
them for one :class:`~p2pswarm.swarm.Swarm`, whose state they read and report to. Kept
apart from the swarm's lifecycle and public API so each stays small; they are the swarm's
own methods in all but name, and nothing else calls them. What they use of the swarm is
spelled out by :class:`SwarmCore` (which :class:`~p2pswarm.swarm.Swarm` satisfies), so this
module does not import the swarm's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import Any, Final, Protocol

import anyio
import anyio.abc

from ..connection import Connection
from ..errors import (
    DialError,
    DialRefusedError,
    HandshakeRefusedError,
    P2PSwarmError,
    PeerBannedError,
    PeerNotFoundError,
)
from ..keys import KeyPair
from ..networks.discovery_backend import DiscoveryBackend
from ..transports._handshake import accept_handshake
from ..transports.base import Dialer
from ._connection_set import Slot
from ._events import CallbackList, call_maybe_async
from ._handlers import (
    ConnectionHandler,
    Firewall,
    accept_forever,
    close_quietly,
    keepalive_loop,
    run_handlers,
    send_probe,
)
from ._pool import PeerPool
from .peer_info import PeerInfo

__all__ = (
    "SwarmCore",
    "accept",
    "authorize",
    "dial",
    "firewalled",
    "open_connection",
    "serve",
    "watch",
)

logger = logging.getLogger("p2pswarm.swarm")


class SwarmCore(Protocol):
    """The state and hooks of a :class:`~p2pswarm.swarm.Swarm` its connection tasks use."""

    key_pair: KeyPair
    closed: bool
    suspended: bool
    connections: set[Connection]
    _pool: PeerPool[Connection]
    _dialer: Dialer
    _firewall: Firewall | None
    _dial_scopes: dict[Slot[Connection], anyio.CancelScope]
    _on_connection: CallbackList[ConnectionHandler]
    _tg: anyio.abc.TaskGroup | None
    _listener_scope: anyio.CancelScope
    _pending_handshakes: int
    _max_pending_handshakes: int
    _keepalive: float | None
    _idle_timeout: float | None
    _handshake_timeout: float | None

    @property
    def dht(self) -> DiscoveryBackend: ...

    def _topic_mode(self, topic: bytes) -> bool | None: ...

    def _changed(self) -> None: ...

    def _retire(self, slot: Slot[Connection], conn: Connection, peer: PeerInfo) -> None: ...

    def _connection_opened(self, conn: Connection, peer: PeerInfo) -> None: ...

    def _dial_failed(self, peer: PeerInfo) -> None: ...

    async def _close_slot(self, slot: Slot[Connection]) -> None: ...

    def _spawn(self, fn: Callable[[], Coroutine[Any, Any, object]]) -> bool: ...


#: What a failed dial or handshake may raise without being a bug of ours.
DIAL_ERRORS: Final = (P2PSwarmError, OSError, anyio.BrokenResourceError)


async def dial(
    swarm: SwarmCore, slot: Slot[Connection], peer: PeerInfo, scope: anyio.CancelScope
) -> None:
    """Dial ``peer`` for ``slot`` and report the outcome to the pool (a refusal too)."""
    conn: Connection | None = None
    refused = False
    try:
        with scope:
            record = peer.record or await swarm.dht.find_peer(peer.public_key)
            if record is None:
                raise PeerNotFoundError("no record for this public key")
            if not record.direct_addresses:
                raise DialError("the peer's record has no direct address")
            first = record.direct_addresses[0]
            if await firewalled(swarm, peer.public_key, (first.host, first.port)):
                raise PeerBannedError("peer is banned or firewalled")
            # Our hello names the topics we found the peer under (the server side
            # learns them); at most 64, as the hello allows.
            topics = [t for t in peer.topics if swarm._topic_mode(t)][:64]
            conn = await swarm._dialer.dial(record, key_pair=swarm.key_pair, topics=topics)
    except DIAL_ERRORS as exc:
        refused = isinstance(exc, DialRefusedError | HandshakeRefusedError)
        logger.debug("dial %s… failed: %r", peer.public_key.hex()[:16], exc)
    except Exception:
        logger.exception("the dialer raised unexpectedly for %s…", peer.public_key.hex()[:16])
    except BaseException:
        # Cancelled with the swarm: the pool still hears the dial ended (``connecting``
        # returns to 0), and a connection that made it through is not left open.
        swarm._pool.dial_ended(slot, peer, ok=False, now=anyio.current_time())
        if conn is not None:
            with anyio.CancelScope(shield=True):
                await close_quietly(conn)
        raise
    finally:
        swarm._dial_scopes.pop(slot, None)
    now = anyio.current_time()
    if conn is None:
        swarm._dial_failed(peer)
    if swarm._pool.dial_ended(slot, peer, ok=conn is not None, now=now, refused=refused):
        assert conn is not None
        open_connection(swarm, slot, conn, peer)
    elif conn is not None:
        await close_quietly(conn)
    swarm._changed()


async def firewalled(swarm: SwarmCore, key: bytes, address: tuple[str, int]) -> bool:
    """The firewall verdict: our own key and banned peers are refused without asking;
    a peer the user firewall rejects is banned, so it is asked once per peer."""
    if key == swarm.key_pair.public_key or swarm._pool.is_banned(key):
        return True
    if swarm._firewall is None:
        return False
    try:
        rejected = await call_maybe_async(swarm._firewall, key, address)
    except Exception:
        # A broken firewall fails closed for this attempt, without banning anyone.
        logger.exception("the firewall raised; refusing %s… this time", key.hex()[:16])
        return True
    if not rejected:
        return False
    swarm._pool.ban(key, PeerBannedError("Peer is firewalled"))
    return True


async def serve(swarm: SwarmCore, listener: anyio.abc.Listener[anyio.abc.SocketStream]) -> None:
    """Accept until the swarm closes its listener (or cancels ``_listener_scope``)."""
    with swarm._listener_scope:
        await accept_forever(listener, partial(accept, swarm), lambda: swarm.closed)


async def accept(swarm: SwarmCore, stream: anyio.abc.SocketStream) -> None:
    """Run one incoming handshake; :func:`authorize` claims the slot once the key is known."""
    if (
        swarm.closed
        or swarm.suspended
        or swarm._pending_handshakes >= swarm._max_pending_handshakes
    ):
        await close_quietly(stream)
        return
    swarm._pending_handshakes += 1
    try:
        await _accept(swarm, stream)
    finally:
        swarm._pending_handshakes -= 1


async def _accept(swarm: SwarmCore, stream: anyio.abc.SocketStream) -> None:
    address = stream.extra(anyio.abc.SocketAttribute.remote_address)
    remote = (str(address[0]), int(address[1])) if isinstance(address, tuple) else ("", 0)
    claimed: list[Slot[Connection]] = []
    conn: Connection | None = None
    try:
        conn = await accept_handshake(
            stream,
            key_pair=swarm.key_pair,
            remote_address=remote,
            authorize=partial(authorize, swarm, claimed),
            keepalive=swarm._keepalive,
            idle_timeout=swarm._idle_timeout,
            handshake_timeout=swarm._handshake_timeout,
        )
    except DIAL_ERRORS as exc:
        logger.debug("incoming handshake from %r failed: %r", remote, exc)
    except Exception:
        logger.exception("incoming handshake from %r failed unexpectedly", remote)
    if conn is None or not claimed or claimed[-1].superseded or swarm.closed:
        await close_quietly(conn or stream)
        for slot in claimed:
            swarm._pool.accept_failed(slot, anyio.current_time())
    else:
        slot = claimed[-1]
        open_connection(swarm, slot, conn, swarm._pool.peer(slot.remote_key, client=False))
    swarm._changed()


async def authorize(
    swarm: SwarmCore,
    claimed: list[Slot[Connection]],
    key: bytes,
    address: tuple[str, int],
    topics: Sequence[bytes],
) -> bool:
    """Decide on an incoming handshake as soon as its key is known: firewall, ban,
    ``max_server_connections`` and dedup. Returning True takes the peer's slot."""
    if swarm.closed or swarm.suspended or await firewalled(swarm, key, address):
        return False
    slot, existing, probe = swarm._pool.admit(key, topics)
    if probe and existing is not None and existing.connection is not None:
        swarm._spawn(partial(send_probe, existing.connection))
    if slot is None:
        return False
    claimed.append(slot)
    if existing is not None:
        await swarm._close_slot(existing)  # before the new one reaches the application
    return True


def open_connection(
    swarm: SwarmCore, slot: Slot[Connection], conn: Connection, peer: PeerInfo
) -> None:
    """Hand a connection that passed dedup to the application (no await before this)."""
    assert swarm._tg is not None
    swarm._pool.opened(slot, conn, peer, anyio.current_time())
    swarm._connection_opened(conn, peer)
    swarm.connections.add(conn)
    swarm._tg.start_soon(watch, swarm, slot, conn, peer)
    if swarm._on_connection:
        swarm._tg.start_soon(run_handlers, list(swarm._on_connection), conn, peer)


async def watch(swarm: SwarmCore, slot: Slot[Connection], conn: Connection, peer: PeerInfo) -> None:
    """Keep ``conn`` fed with keep-alives until it closes, then retire its slot."""
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(keepalive_loop, conn)
            await conn.wait_closed()
            tg.cancel_scope.cancel()
    finally:
        # Cancelled: the swarm is closing, and this connection may have opened after
        # its closing pass (a dial that finished meanwhile); it must not outlive it.
        await close_quietly(conn)
        swarm._retire(slot, conn, peer)
