"""The Swarm: join topics, get one encrypted connection per peer, keep it alive.

This module is the thin I/O layer: it owns one anyio task group, the TCP listener, the
discovery backend, and one task per dial, per accepted handshake and per open connection
(those tasks' bodies are in :mod:`p2pswarm.swarm._connections`).
Every decision (whom to dial next, when to retry, which of two connections to the same
peer survives, when a peer may be forgotten, when ``flush()`` is done) is made by the pure
:class:`~p2pswarm.swarm._pool.PeerPool`, which takes the time as an argument; this module
gathers facts, asks it, and does the I/O it asks for.

Lifetime of a connection: it is handed to every ``on_connection`` handler and closed when
the last async handler returns (anyio's listener convention), when a handler raises, when
the dedup rule retires it, or when the swarm closes; see :meth:`Swarm.on_connection`.

Typical use::

    async with Swarm() as swarm:
        @swarm.on_connection
        async def chat(conn: Connection, peer: PeerInfo) -> None:
            await conn.send(b"hello")
            async for data in conn:          # ends when the peer closes
                print(peer.public_key.hex()[:8], data)

        await swarm.join(p2pswarm.topic("my-room")).flushed()
        await anyio.sleep_forever()
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import anyio
import anyio.abc

from ..connection import DEFAULT_IDLE_TIMEOUT, DEFAULT_KEEPALIVE, Connection
from ..errors import (
    SwarmClosedError,
)
from ..keys import KeyPair, check_public_key, check_topic
from ..networks import _backend
from ..networks.discovery_backend import DiscoveryBackend
from ..networks.local_network import LocalDiscovery
from ..networks.network_config import bootstrap_from_env
from ..peer_record import PeerRecord
from ..peerbook.book import PeerBook
from ..transports._handshake import DEFAULT_HANDSHAKE_TIMEOUT, MAX_PENDING_HANDSHAKES
from ..transports.base import Dialer, Transport
from ..transports.tcp import TCPDialer, TCPTransport
from . import _connections
from ._connection_set import Slot
from ._events import CallbackList
from ._extensions import node_info
from ._handlers import (
    ConnectionHandler,
    Firewall,
    close_quietly,
    send_probe,
)
from ._peerbook import BookKeeper, run_peer_book
from ._policy import MAX_PARALLEL, MAX_PEERS, Limits, SwarmStats
from ._pool import PeerPool
from ._retry import DEFAULT_JITTER, Backoffs
from .discovery import PeerDiscovery, TopicDiscovery, _check_limit
from .peer_info import PeerInfo

__all__ = ("Firewall", "Swarm", "SwarmStats")

logger = logging.getLogger("p2pswarm.swarm")


class Swarm:
    """Find peers by topic and keep one encrypted connection to each.

    Use as ``async with Swarm(bootstrap=...) as swarm:``; leaving the block closes every
    connection, unannounces every topic and stops every task.

    Options (times in seconds): ``key_pair`` or ``seed`` (identity; random by default),
    ``bootstrap`` (DHT nodes as ``(host, port)``; default: the embedded local network of
    :mod:`p2pswarm.networks.local_network`, or ``P2PSWARM_BOOTSTRAP``) or ``dht`` (a ready
    :class:`~p2pswarm.networks.discovery_backend.DiscoveryBackend`, not closed by the swarm),
    ``max_peers``, ``max_parallel``, ``max_client_connections``, ``max_server_connections``
    (see :class:`~p2pswarm.swarm._policy.Limits`), ``firewall(public_key, (host, port)) -> bool``
    (True rejects and bans; sync or async; consulted before every dial and handshake of a
    peer not yet banned, so a rejected peer costs one call), ``backoffs`` (S, M, L, X retry
    delays; default about 1, 5, 15 and 600 s), ``jitter`` (default 0.5 s), ``host`` /
    ``port`` (where to listen; the swarm's own DHT node takes the same port when free; by
    default ``127.0.0.1`` on the local network or a loopback bootstrap list, else
    ``0.0.0.0``: see :func:`~p2pswarm.networks._backend.default_host`; with ``dht`` given, loopback
    unless ``host`` says otherwise),
    ``keepalive`` / ``idle_timeout`` / ``handshake_timeout`` (for every connection),
    ``dialer`` (how to reach a peer record; TCP by default), ``peer_book`` (a sqlite file
    path, or an open :class:`~p2pswarm.peerbook.PeerBook`, kept open: known peers, their
    outcomes and bans, kept across restarts and used to redial known peers at once; see
    :mod:`p2pswarm.swarm._peerbook`).
    """

    def __init__(
        self,
        *,
        key_pair: KeyPair | None = None,
        seed: bytes | None = None,
        bootstrap: Sequence[tuple[str, int]] | None = None,
        max_peers: int = MAX_PEERS,
        max_parallel: int = MAX_PARALLEL,
        max_client_connections: int | None = None,
        max_server_connections: int | None = None,
        firewall: Firewall | None = None,
        backoffs: Sequence[float] | Backoffs | None = None,
        jitter: float | None = None,
        host: str | None = None,
        port: int = 0,
        dht: DiscoveryBackend | None = None,
        keepalive: float | None = DEFAULT_KEEPALIVE,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        dialer: Dialer | None = None,
        peer_book: PeerBook | str | os.PathLike[str] | None = None,
    ) -> None:
        if key_pair is not None and seed is not None:
            raise ValueError("pass key_pair or seed, not both")
        if key_pair is not None and not isinstance(key_pair, KeyPair):
            raise TypeError("key_pair must be a p2pswarm.KeyPair")
        self.key_pair = key_pair or (KeyPair.from_seed(seed) if seed else KeyPair.generate())
        _backend.check_discovery_options(bootstrap, dht)
        if firewall is not None and not callable(firewall):
            raise TypeError("firewall must be callable(public_key, remote_address) -> bool")
        self._firewall = firewall
        if host is None:
            host = _backend.default_host(
                bootstrap, None if dht is not None else bootstrap_from_env()
            )
        self._host, self._port_option = host, port
        self._bootstrap, self._dht_option = bootstrap, dht
        self._keepalive, self._idle_timeout = keepalive, idle_timeout
        self._peer_book_option = peer_book
        self._book: BookKeeper | None = None
        self._handshake_timeout = handshake_timeout
        self._pending_handshakes = 0
        self._max_pending_handshakes = MAX_PENDING_HANDSHAKES
        #: Where incoming streams come from, and how a found peer is reached.
        self._transport: Transport = TCPTransport()
        self._dialer: Dialer = dialer or TCPDialer(
            keepalive=keepalive, idle_timeout=idle_timeout, handshake_timeout=handshake_timeout
        )
        self._discoveries: dict[bytes, TopicDiscovery] = {}
        self._pool: PeerPool[Connection] = PeerPool(
            self.key_pair.public_key,
            Limits.checked(max_peers, max_parallel, max_client_connections, max_server_connections),
            Backoffs.coerce(backoffs),
            DEFAULT_JITTER if jitter is None else jitter,
            topic_mode=self._topic_mode,
            on_ban=self._banned,
            on_flushed=self._flushed,
        )
        self._flush_events: dict[int, tuple[anyio.Event, list[bool]]] = {}
        self._dial_scopes: dict[Slot[Connection], anyio.CancelScope] = {}
        self._leaving: dict[bytes, anyio.Event] = {}

        #: Open connections (each passed dedup and was handed to the handlers).
        self.connections: set[Connection] = set()
        self.suspended = False
        self.closed = False

        self._on_connection: CallbackList[ConnectionHandler] = CallbackList("connection")
        self._on_update: CallbackList[Callable[[], Any]] = CallbackList("update")
        self._on_ban: CallbackList[Callable[[PeerInfo, Exception], Any]] = CallbackList("ban")

        self._outer: anyio.abc.TaskGroup | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._dht: DiscoveryBackend | None = None
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None
        self._listener_scope = anyio.CancelScope()
        self._port = 0
        self._retry_wakeup = anyio.Event()
        self._retry_armed = math.inf  # when the retry loop will wake next
        self._listening: _backend.SelfAnnouncer | None = None
        self._closed_event = anyio.Event()
        self._tasks_done = anyio.Event()

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Swarm:
        if self._outer is not None or self.closed:
            raise RuntimeError("a Swarm can be entered once")
        # The task group is entered and exited by hand, not through an AsyncExitStack: on
        # asyncio a stack unwinding an exception through a task group (which re-raises the
        # very instance it was given) after another exit callback raised can set that
        # exception's ``__context__`` to itself, and anyio and contextlib then walk the
        # cycle forever (a cancelled task holding a swarm never finished).
        outer = self._outer = anyio.create_task_group()
        await outer.__aenter__()
        try:
            listener = await self._transport.listen(
                local_host=self._host, local_port=self._port_option
            )
            self._listener = listener
            self._port = listener.extra(anyio.abc.SocketAttribute.local_port)
            await outer.start(self._host_tasks)
            assert self._tg is not None and self._dht is not None
            self._listening = _backend.SelfAnnouncer(self._dht, self.key_pair, self._port)
            self._tg.start_soon(_connections.serve, self, listener)
            self._tg.start_soon(self._retry_loop)
        except BaseException:
            self.closed = True
            await self._exit_task_group()
            raise
        return self

    async def _host_tasks(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Owns the discovery backend and every task of the swarm, in a task of its own, so
        that :meth:`aclose` can cancel them without cancelling the ``async with`` body."""
        try:
            async with _backend.open_backend(
                self._bootstrap, self._dht_option, self._host, self._port
            ) as dht:
                self._dht = dht
                if isinstance(dht, LocalDiscovery):
                    # A takeover of the local network empties it: refresh every topic.
                    dht.on_network_change(self.network_changed)
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    if self._peer_book_option is not None:
                        self._book = await tg.start(run_peer_book, self, self._peer_book_option)
                    task_status.started()
                    await anyio.sleep_forever()
        finally:
            self._tasks_done.set()

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.aclose()
        finally:
            await self._exit_task_group()

    async def _exit_task_group(self) -> None:
        """Stop every task and exit the task group entered by :meth:`__aenter__` (in the
        task that entered it, as anyio requires).

        The body's exception is not handed to the task group: it is the caller's, and it
        propagates unchanged (anyio would wrap it in an exception group). A crash of the
        swarm's own tasks still surfaces, as the task group's exception group.
        """
        outer, self._outer = self._outer, None
        try:
            with anyio.CancelScope(shield=True):
                if self._tg is not None:
                    self._tg.cancel_scope.cancel()
                if self._listener is not None:
                    await self._listener.aclose()
        finally:
            if outer is not None:
                outer.cancel_scope.cancel()
                await outer.__aexit__(None, None, None)

    async def aclose(self, *, force: bool = False) -> None:
        """Close the swarm: unannounce every topic (skipped when ``force``), close every
        connection and stop every task. Pending ``flush()`` calls return False.

        Safe to call from a handler or the ``async with`` body; leaving the block calls it
        too. It does not replace leaving the block: the swarm's task group was entered by
        ``__aenter__`` and only ``__aexit__``, in the same task, exits it. Use the swarm
        as ``async with`` (or pair ``__aenter__`` with ``__aexit__`` by hand).
        """
        if self.closed:
            await self._closed_event.wait()
            return
        self.closed = True
        self._pool.accepting = False
        try:
            with anyio.CancelScope(shield=True):
                self._flushed(self._pool.flushes.settle_all(), False)
                self._pool.reset()
                discoveries = list(self._discoveries.values())
                self._discoveries.clear()
                async with anyio.create_task_group() as tg:
                    for discovery in discoveries:
                        tg.start_soon(partial(discovery.destroy, unannounce=not force))
                    if self._listening is not None and not force:
                        tg.start_soon(self._listening.withdraw)
                self._listener_scope.cancel()
                if self._listener is not None:
                    await self._listener.aclose()
                await self._close_all_connections()
        finally:
            if self._tg is not None:
                self._tg.cancel_scope.cancel()
            self._closed_event.set()
        if self._tg is not None:
            await self._tasks_done.wait()

    async def destroy(self, *, force: bool = False) -> None:
        """Hyperswarm's name for :meth:`aclose`."""
        await self.aclose(force=force)

    # -- public state -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port this swarm accepts connections on."""
        return self._port

    @property
    def dht(self) -> DiscoveryBackend:
        """The discovery backend (a ``DHTNode`` unless one was passed in)."""
        if self._dht is None:
            raise RuntimeError("the swarm is not running: use 'async with Swarm(...)'")
        return self._dht

    @property
    def peer_book(self) -> PeerBook | None:
        """The peer book in use (``peer_book=`` option), or None."""
        return None if self._book is None else self._book.book

    @property
    def connecting(self) -> int:
        """Dials in flight."""
        return self._pool.connecting

    @property
    def peers(self) -> dict[bytes, PeerInfo]:
        """Every peer the swarm knows (connected, connecting, queued, retrying, explicit or
        banned), by public key. Others are forgotten at once: the map does not grow."""
        return self._pool.peers

    @property
    def explicit_peers(self) -> set[PeerInfo]:
        """The peers kept with :meth:`join_peer`."""
        return self._pool.explicit_peers

    @property
    def stats(self) -> SwarmStats:
        """Counters: connections opened/closed/attempted per direction, bans, updates, and
        per peer (``stats.peers``: bytes, connections, failed dials, requests)."""
        return self._pool.stats

    @property
    def limits(self) -> Limits:
        """``max_peers``, ``max_parallel`` and the per-direction caps in force."""
        return self._pool.limits

    def status(self, topic: bytes) -> TopicDiscovery | None:
        """The topic's discovery state, or None when the topic is not joined."""
        return self._discoveries.get(check_topic(topic))

    def topics(self) -> Iterator[TopicDiscovery]:
        """The joined topics' discovery states, in join order."""
        return iter(list(self._discoveries.values()))

    # -- node info ------------------------------------------------------------------------------

    def set_info(self, info: Mapping[str, Any]) -> None:
        """Publish a small JSON object about this node (at most 4 KiB encoded) to every
        peer: sent when a connection opens and pushed again on change (coalesced, at most
        once a second per connection). Call it before joining topics. Peers see it as
        ``PeerInfo.info``; see :mod:`p2pswarm.node_info`."""
        node_info(self).set(info)

    @property
    def info(self) -> dict[str, Any]:
        """The node info this swarm publishes (``{}`` until :meth:`set_info`)."""
        return node_info(self).info

    def on_info(self, callback: Callable[[PeerInfo, dict[str, Any]], Any]) -> Any:
        """Register ``callback(peer_info, info)`` for each peer's node info: when its
        connection opens and whenever the peer changes it. Sync or async; a decorator."""
        return node_info(self).on_info(callback)

    # -- events -------------------------------------------------------------------------------

    def on_connection(self, handler: ConnectionHandler) -> ConnectionHandler:
        """Register ``handler(conn, peer_info)``, sync or async; usable as a decorator.

        Every handler is called for each connection that passed dedup (so never twice for
        one peer at a time); each async handler runs in its own task. If a handler raises,
        that connection is closed and the error is logged on ``p2pswarm.swarm`` (peer
        failures such as ``BrokenResourceError`` at INFO, anything else with a traceback);
        the swarm and other connections are unaffected. No error handler is needed.

        When the last async handler returns, the connection is closed, as with anyio's
        ``Listener.serve``: a connection is read only by its handler (there is no hidden
        reader), so a handler that has returned can no longer notice the peer leaving, and
        closing it lets the swarm redial. Keep the handler running for as long as you use
        the connection. Sync handlers only observe (log, count, store); with no async
        handler registered the connection stays open for whoever reads it from
        :attr:`connections`. Handlers registered later see only later connections;
        :meth:`remove_connection_handler` unregisters one.
        """
        return self._on_connection.add(handler)

    def on_update(self, callback: Callable[[], Any]) -> Callable[[], Any]:
        """Register ``callback()`` for every change of connections, connecting or peers."""
        return self._on_update.add(callback)

    def on_ban(
        self, callback: Callable[[PeerInfo, Exception], Any]
    ) -> Callable[[PeerInfo, Exception], Any]:
        """Register ``callback(peer_info, error)`` for every ban: by the firewall (error:
        ``PeerBannedError("Peer is firewalled")``) or by ``PeerInfo.ban()``."""
        return self._on_ban.add(callback)

    # Registration returns the callable itself (the methods are decorators), so the way
    # back is by that callable, as asyncio's ``remove_done_callback``. Each returns False
    # when the callable was not registered.

    def remove_connection_handler(self, handler: ConnectionHandler) -> bool:
        """Unregister an ``on_connection`` handler: later connections no longer reach it.
        Handlers already running for earlier connections keep running."""
        return self._on_connection.remove(handler)

    def remove_update_callback(self, callback: Callable[[], Any]) -> bool:
        """Unregister an ``on_update`` callback."""
        return self._on_update.remove(callback)

    def remove_ban_callback(self, callback: Callable[[PeerInfo, Exception], Any]) -> bool:
        """Unregister an ``on_ban`` callback."""
        return self._on_ban.remove(callback)

    # -- topics -------------------------------------------------------------------------------

    def join(
        self, topic: bytes, *, server: bool = True, client: bool = True, limit: int | None = None
    ) -> PeerDiscovery:
        """Join ``topic``: announce us (server) and/or look others up (client).

        Returns a session; joining a joined topic adds a session and upgrades its mode.
        ``limit`` caps the new peers handed over per discovery round.
        """
        topic = check_topic(topic)
        if self.closed or self._tg is None:
            raise SwarmClosedError("the swarm is closed or not started")
        if not (server or client):
            raise ValueError("join needs server=True or client=True")
        limit = _check_limit(limit)
        discovery = self._discoveries.get(topic)
        if discovery is None:
            discovery = TopicDiscovery(self, topic, wait_for=self._leaving.get(topic))
            self._discoveries[topic] = discovery
            if self.suspended:
                discovery.suspended = True
            self._tg.start_soon(discovery.run)
        session = discovery.session(self, client=bool(client), server=bool(server), limit=limit)
        if self._book is not None and client:
            self._book.topic_joined(topic)
        return session

    async def leave(self, topic: bytes, *, close: bool = False) -> None:
        """Stop discovering ``topic`` and unannounce it. Open connections stay, unless
        ``close``: then connections that only this topic justified are closed too (on
        the accepting side, a connection is known under the topics of the dialler's
        hello). Leaving a topic that is not joined does nothing."""
        topic = check_topic(topic)
        discovery = self._discoveries.pop(topic, None)
        if discovery is None:
            return
        done = self._leaving.setdefault(topic, anyio.Event())
        try:
            await discovery.destroy()
        finally:
            if self._leaving.get(topic) is done:
                del self._leaving[topic]
            done.set()
        for slot in self._pool.left_topic(topic, close=close):
            await self._close_slot(slot)
        self._changed()

    def _topic_mode(self, topic: bytes) -> bool | None:
        discovery = self._discoveries.get(topic)
        return None if discovery is None else discovery.is_client

    # -- explicit peers -----------------------------------------------------------------------

    def join_peer(self, public_key: bytes) -> None:
        """Keep a connection to this peer: dial it (found by key) and redial it forever
        (S, M, L back-offs, then X). Joining yourself does nothing."""
        key = check_public_key(public_key)
        if self.closed:
            raise SwarmClosedError("the swarm is closed")
        self._pool.join_peer(key)
        self._changed()

    def leave_peer(self, public_key: bytes) -> None:
        """Stop keeping this peer. An open connection stays; nothing redials it for this."""
        self._pool.leave_peer(check_public_key(public_key))
        self._changed()

    async def listen(self) -> None:
        """Make this swarm findable by its public key (for ``join_peer``). Idempotent."""
        if self._listening is None or self.closed:
            raise SwarmClosedError("the swarm is closed or not started")
        await self._listening.ensure(self._spawn)

    # -- flush, suspend, network changes --------------------------------------------------------

    async def flush(self) -> bool:
        """Wait until every peer discovered so far was attempted (connected, failed or
        skipped), after the current discovery round of every topic. False when the swarm
        closed meanwhile. Does not wait for the remote side's handler."""
        for discovery in list(self._discoveries.values()):
            await discovery.flushed()
        if self.closed:
            return False
        token = self._pool.register_flush()
        if token is None:
            return True
        event, result = anyio.Event(), [True]
        self._flush_events[token] = (event, result)
        try:
            await event.wait()
        finally:
            self._flush_events.pop(token, None)
            self._pool.flushes.cancel(token)
        return result[0]

    async def suspend(self) -> None:
        """Go quiet (an app sent to the background): unannounce, close every connection,
        forget queued retries, refuse incoming handshakes until :meth:`resume`."""
        if self.suspended or self.closed:
            return
        self.suspended = True
        self._pool.accepting = False
        async with anyio.create_task_group() as tg:
            for discovery in self._discoveries.values():
                tg.start_soon(discovery.suspend)
        self._pool.reset()
        self._flushed(self._pool.flushes.settle_all(), True)
        await self._close_all_connections()
        self._changed()

    async def resume(self) -> None:
        """Come back from :meth:`suspend`: rediscover every topic and redial."""
        if not self.suspended or self.closed:
            return
        self.suspended = False
        self._pool.accepting = True
        for discovery in self._discoveries.values():
            discovery.resume()
        for peer in list(self.explicit_peers):
            self._pool.join_peer(peer.public_key)
        self._changed()

    async def network_changed(self) -> None:
        """Tell the swarm the network changed (new Wi-Fi, wake from sleep): a keep-alive
        goes out on every connection, so dead ones surface quickly, and every topic is
        rediscovered. The keep-alives go out in their own tasks: a dead peer's full
        socket buffer must not hold this call up."""
        for conn in list(self.connections):
            self._spawn(partial(send_probe, conn))
        for discovery in self._discoveries.values():
            discovery.request_refresh()

    # -- dialling -------------------------------------------------------------------------------

    def _handle_peer(self, record: PeerRecord, topic: bytes) -> bool:
        """A lookup found ``record`` under ``topic``; True when it is a peer to dial."""
        if self.closed:
            return False
        if self._book is not None:
            self._book.peer_found(record, topic)
        handed = self._pool.found(record, topic)
        self._changed()
        return handed

    def _changed(self) -> None:
        """State moved: start the dials the pool allows, then tell the update listeners."""
        if self._tg is not None and not self.closed:
            for slot, peer in self._pool.next_dials():
                scope = self._dial_scopes[slot] = anyio.CancelScope()
                self._tg.start_soon(_connections.dial, self, slot, peer, scope)
        deadline = self._pool.retry.next_deadline()
        if deadline is not None and deadline < self._retry_armed:
            self._retry_wakeup.set()
        self._pool.stats.updates += 1
        if self._on_update:
            self._on_update.emit(self._spawn)

    def _connection_opened(self, conn: Connection, peer: PeerInfo) -> None:
        self._pool.stats.per_peer.opened(conn)
        if self._book is not None:
            self._book.connected(conn, peer)

    def _dial_failed(self, peer: PeerInfo) -> None:
        self._pool.stats.per_peer.dial_failed(peer.public_key)
        if self._book is not None:
            self._book.dial_failed(peer.public_key)

    def _retire(self, slot: Slot[Connection], conn: Connection, peer: PeerInfo) -> None:
        self._pool.stats.per_peer.closed(conn)
        self.connections.discard(conn)
        if self._pool.closed(slot, peer, anyio.current_time()):
            self._changed()

    async def _close_slot(self, slot: Slot[Connection]) -> None:
        slot.superseded = True
        scope = self._dial_scopes.get(slot)
        if scope is not None:
            scope.cancel()
        conn = slot.connection
        if conn is not None:
            await close_quietly(conn)
            self._retire(slot, conn, self._pool.peer(slot.remote_key, client=slot.is_initiator))

    async def _close_all_connections(self) -> None:
        with anyio.CancelScope(shield=True):
            for slot in list(self._pool.slots):
                await self._close_slot(slot)

    # -- retries, callbacks -----------------------------------------------------------------------

    async def _retry_loop(self) -> None:
        while True:
            self._pool.retries_due(anyio.current_time())
            self._changed()
            deadline = self._pool.retry.next_deadline()
            self._retry_wakeup = anyio.Event()
            self._retry_armed = math.inf if deadline is None else deadline
            with anyio.move_on_after(max(self._retry_armed - anyio.current_time(), 0.0)):
                await self._retry_wakeup.wait()

    def _banned(self, peer: PeerInfo, reason: Exception) -> None:
        self._on_ban.emit(self._spawn, peer, reason)

    def _flushed(self, tokens: list[int], result: bool) -> None:
        for token in tokens:
            entry = self._flush_events.get(token)
            if entry is not None:
                entry[1][0] = result
                entry[0].set()

    def _spawn(self, fn: Callable[[], Coroutine[Any, Any, object]]) -> bool:
        """Start ``fn`` in the swarm's task group; False once the swarm is closed."""
        if self._tg is None or self.closed:
            return False
        self._tg.start_soon(fn)
        return True

    def __repr__(self) -> str:
        state = "closed" if self.closed else "suspended" if self.suspended else "open"
        return (
            f"<Swarm {self.key_pair.public_key.hex()[:16]}… {state} port={self._port} "
            f"topics={len(self._discoveries)} connections={len(self.connections)} "
            f"connecting={self.connecting} peers={len(self.peers)}>"
        )
