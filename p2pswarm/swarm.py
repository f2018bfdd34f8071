"""The Swarm: join topics, get one encrypted connection per peer, keep it alive.

This module is the thin I/O layer: it owns one anyio task group, the TCP listener, the
discovery backend, and one task per dial, per accepted handshake and per open connection.
Every decision (whom to dial next, when to retry, which of two connections survives, when
a peer may be forgotten, when ``flush()`` is done) is made by the pure modules
``peer_info``, ``_retry``, ``_queue``, ``_connection_set`` and ``_flush``, which take the
time as an argument and are tested with a fake clock.

Lifetime of a connection: it is handed to every ``on_connection`` handler and closed when
the last async handler returns (anyio's listener convention), when a handler raises, when
the dedup rule retires it, or when the swarm closes; see :meth:`Swarm.on_connection`.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import AsyncExitStack
from functools import partial
from typing import Any, Final

import anyio
import anyio.abc

from . import _backend
from ._connection_set import ConnectionSet, Slot
from ._events import CallbackList, call_maybe_async
from ._flush import FlushTracker
from ._handlers import ConnectionHandler, close_quietly, keepalive_loop, run_handlers, send_probe
from ._policy import (
    MAX_PARALLEL,
    MAX_PEERS,
    Admission,
    Limits,
    SwarmStats,
    admit_incoming,
    worth_dialling,
    worth_keeping,
)
from ._queue import DialQueue
from ._retry import DEFAULT_JITTER, Backoffs, RetryTimer
from .connection import Connection
from .discovery import PeerDiscovery, TopicDiscovery, _check_limit
from .discovery_backend import DiscoveryBackend
from .errors import (
    DialError,
    P2PSwarmError,
    PeerBannedError,
    PeerNotFoundError,
    SwarmClosedError,
)
from .keys import KeyPair, check_public_key, check_topic
from .peer_info import PeerInfo
from .peer_record import PeerRecord
from .transport import Dialer, TCPDialer, accept_handshake

__all__ = ("Firewall", "Swarm", "SwarmStats")

logger = logging.getLogger("p2pswarm.swarm")

#: Bound on one incoming handshake (firewall included), so a silent dialler costs little.
HANDSHAKE_TIMEOUT: Final = 10.0

#: ``firewall(remote_public_key, remote_address) -> bool``; True rejects. May be async.
Firewall = Callable[[bytes, tuple[str, int]], bool | Awaitable[bool]]


class Swarm:
    """Find peers by topic and keep one encrypted connection to each.

    Use as ``async with Swarm(bootstrap=...) as swarm:``; leaving the block closes every
    connection, unannounces every topic and stops every task.

    Options (times in seconds): ``key_pair`` or ``seed`` (identity; random by default),
    ``bootstrap`` (DHT nodes as ``(host, port)``) or ``dht`` (a ready
    :class:`~p2pswarm.discovery_backend.DiscoveryBackend`, not closed by the swarm),
    ``max_peers``, ``max_parallel``, ``max_client_connections``, ``max_server_connections``
    (see :attr:`limits`), ``firewall(public_key, (host, port)) -> bool`` (True rejects and
    bans; sync or async; consulted before every dial and handshake of a peer not yet
    banned), ``backoffs`` (S, M, L, X retry delays), ``jitter``, ``host`` / ``port`` (where
    to listen; the swarm's DHT node takes the same port when free), ``keepalive`` and
    ``idle_timeout`` (for every connection), ``dialer`` (how to reach a peer record).
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
        host: str = "127.0.0.1",
        port: int = 0,
        dht: DiscoveryBackend | None = None,
        keepalive: float | None = 5.0,
        idle_timeout: float | None = 20.0,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        dialer: Dialer | None = None,
    ) -> None:
        if key_pair is not None and seed is not None:
            raise ValueError("pass key_pair or seed, not both")
        if key_pair is not None and not isinstance(key_pair, KeyPair):
            raise TypeError("key_pair must be a p2pswarm.KeyPair")
        self.key_pair = key_pair or (KeyPair.from_seed(seed) if seed else KeyPair.generate())
        _backend.check_discovery_options(bootstrap, dht)
        #: The connection limits (see :class:`~p2pswarm._policy.Limits`).
        self.limits = Limits.checked(
            max_peers, max_parallel, max_client_connections, max_server_connections
        )
        if firewall is not None and not callable(firewall):
            raise TypeError("firewall must be callable(public_key, remote_address) -> bool")
        self._firewall = firewall
        self._host, self._port_option = host, port
        self._bootstrap, self._dht_option = bootstrap, dht
        self._conn_options: dict[str, float | None] = {
            "keepalive": keepalive,
            "idle_timeout": idle_timeout,
            "handshake_timeout": handshake_timeout,
        }
        self._dialer: Dialer = dialer or TCPDialer(**self._conn_options)
        rng = random.Random()
        self._retry = RetryTimer(
            Backoffs.coerce(backoffs), DEFAULT_JITTER if jitter is None else jitter, rng=rng
        )
        self._queue = DialQueue(rng)
        self._slots: ConnectionSet[Connection] = ConnectionSet()
        self._flushes = FlushTracker()
        self._flush_events: dict[int, tuple[anyio.Event, list[bool]]] = {}
        self._discoveries: dict[bytes, TopicDiscovery] = {}
        self._dial_scopes: dict[Slot[Connection], anyio.CancelScope] = {}
        self._leaving: dict[bytes, anyio.Event] = {}
        self._ban_reason: dict[bytes, Exception] = {}

        self.connections: set[Connection] = set()
        self.connecting = 0
        self.peers: dict[bytes, PeerInfo] = {}
        self.explicit_peers: set[PeerInfo] = set()
        self.stats = SwarmStats()
        self.suspended = False
        self.closed = False

        self._on_connection: CallbackList[ConnectionHandler] = CallbackList("connection")
        self._on_update: CallbackList[Callable[[], Any]] = CallbackList("update")
        self._on_ban: CallbackList[Callable[[PeerInfo, Exception], Any]] = CallbackList("ban")

        self._stack = AsyncExitStack()
        self._tg: anyio.abc.TaskGroup | None = None
        self._dht: DiscoveryBackend | None = None
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None
        self._listener_scope = anyio.CancelScope()
        self._port = 0
        self._retry_wakeup = anyio.Event()
        self._listening: _backend.SelfAnnouncer | None = None
        self._closed_event = anyio.Event()
        self._tasks_done = anyio.Event()

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Swarm:
        if self._tg is not None or self.closed:
            raise RuntimeError("a Swarm can be entered once")
        try:
            outer = await self._stack.enter_async_context(anyio.create_task_group())
            listener = await anyio.create_tcp_listener(
                local_host=self._host, local_port=self._port_option, reuse_port=True
            )
            self._listener = listener
            self._stack.push_async_callback(listener.aclose)
            self._port = listener.extra(anyio.abc.SocketAttribute.local_port)
            await outer.start(self._host_tasks)
            assert self._tg is not None and self._dht is not None
            self._listening = _backend.SelfAnnouncer(self._dht, self.key_pair, self._port)
            self._tg.start_soon(self._serve, listener)
            self._tg.start_soon(self._retry_loop)
        except BaseException:
            self.closed = True
            if self._tg is not None:
                self._tg.cancel_scope.cancel()
            await self._stack.aclose()
            raise
        return self

    async def _host_tasks(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Owns the discovery backend and every task of the swarm, in a task of its own, so
        that :meth:`aclose` can cancel them without cancelling the ``async with`` body."""
        try:
            async with AsyncExitStack() as stack:
                self._dht = await _backend.open_backend(
                    stack, self._bootstrap, self._dht_option, self._host, self._port
                )
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    task_status.started()
                    await anyio.sleep_forever()
        finally:
            self._tasks_done.set()

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.aclose()
        finally:
            await self._stack.aclose()

    async def aclose(self, *, force: bool = False) -> None:
        """Close the swarm: unannounce every topic (skipped when ``force``), close every
        connection and stop every task. Pending ``flush()`` calls return False.

        Safe to call from a handler; leaving the ``async with`` block calls it too.
        """
        if self.closed:
            await self._closed_event.wait()
            return
        self.closed = True
        try:
            with anyio.CancelScope(shield=True):
                self._settle_flushes(self._flushes.settle_all(), False)
                for peer in self._retry.clear() + self._queue.clear():
                    peer.waiting = peer.queued = False
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

    def status(self, topic: bytes) -> TopicDiscovery | None:
        """The topic's discovery state, or None when the topic is not joined."""
        return self._discoveries.get(check_topic(topic))

    def topics(self) -> Iterator[TopicDiscovery]:
        """The joined topics' discovery states, in join order."""
        return iter(list(self._discoveries.values()))

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
        :attr:`connections`. Handlers registered later see only later connections.
        """
        return self._on_connection.add(handler)

    def on_update(self, callback: Callable[[], Any]) -> Callable[[], Any]:
        """Register ``callback()`` for every change of connections, connecting or peers."""
        return self._on_update.add(callback)

    def on_ban(
        self, callback: Callable[[PeerInfo, Exception], Any]
    ) -> Callable[[PeerInfo, Exception], Any]:
        """Register ``callback(peer_info, error)`` for every ban (firewall or ``ban()``)."""
        return self._on_ban.add(callback)

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
            self._tg.start_soon(discovery.run)
        session = discovery.session(self, client=bool(client), server=bool(server), limit=limit)
        if self.suspended:
            discovery.suspended = True
        return session

    async def leave(self, topic: bytes, *, close: bool = False) -> None:
        """Stop discovering ``topic`` and unannounce it. Open connections stay, unless
        ``close``: then connections that only this topic justified are closed too."""
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
        for peer in list(self.peers.values()):
            if topic not in peer.topics:
                continue
            if not self._justified(peer):
                self._unschedule(peer)  # no dial or redial for a topic we left
            slot = self._slots.get(peer.public_key)
            if close and slot is not None and not worth_keeping(peer, self._discoveries):
                await self._close_slot(slot)
            self._maybe_forget(peer)

    # -- explicit peers -----------------------------------------------------------------------

    def join_peer(self, public_key: bytes) -> None:
        """Keep a connection to this peer: dial it (found by key) and redial it forever."""
        key = check_public_key(public_key)
        if key == self.key_pair.public_key:
            return
        if self.closed:
            raise SwarmClosedError("the swarm is closed")
        peer = self._peer(key, client=True)
        peer.explicit = True
        self.explicit_peers.add(peer)
        if peer.queued:
            self._queue.remove(peer)  # move to the explicit lane
            self._queue.push(peer)
        elif key not in self._slots and not peer.waiting:
            peer._reset()
            self._queue.push(peer)
        self._update()
        self._attempt_dials()

    def leave_peer(self, public_key: bytes) -> None:
        """Stop keeping this peer. An open connection stays; nothing redials it for this."""
        peer = self.peers.get(check_public_key(public_key))
        if peer is None or not peer.explicit:
            return
        peer.explicit = False
        self.explicit_peers.discard(peer)
        if not self._justified(peer):
            self._unschedule(peer)
        self._maybe_forget(peer)
        self._update()

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
        if self.connecting == 0 and self._saturated():
            return True
        outstanding = [p.public_key for p in self._queue] + [
            s.remote_key for s in self._slots if s.connection is None
        ]
        token = self._flushes.register(outstanding)
        if token is None:
            return True
        event, result = anyio.Event(), [True]
        self._flush_events[token] = (event, result)
        try:
            await event.wait()
        finally:
            self._flush_events.pop(token, None)
            self._flushes.cancel(token)
        return result[0]

    async def suspend(self) -> None:
        """Go quiet (an app sent to the background): unannounce, close every connection,
        forget queued retries, refuse incoming handshakes until :meth:`resume`."""
        if self.suspended or self.closed:
            return
        self.suspended = True
        async with anyio.create_task_group() as tg:
            for discovery in self._discoveries.values():
                tg.start_soon(discovery.suspend)
        for peer in self._retry.clear() + self._queue.clear():
            peer.waiting = peer.queued = False
            self._maybe_forget(peer)
        self._settle_flushes(self._flushes.settle_all(), True)
        await self._close_all_connections()
        self._update()

    async def resume(self) -> None:
        """Come back from :meth:`suspend`: rediscover every topic and redial."""
        if not self.suspended or self.closed:
            return
        self.suspended = False
        for discovery in self._discoveries.values():
            discovery.resume()
        for peer in list(self.explicit_peers):
            if peer.public_key not in self._slots:
                self._queue.push(peer)
        self._attempt_dials()

    async def network_changed(self) -> None:
        """Tell the swarm the network changed (new Wi-Fi, wake from sleep): a keep-alive
        goes out on every connection, so dead ones surface quickly, and every topic is
        rediscovered."""
        for conn in list(self.connections):
            try:
                await conn.send_keepalive()
            except Exception as exc:
                logger.debug("keep-alive failed on %r: %r", conn, exc)
        for discovery in self._discoveries.values():
            discovery.request_refresh()

    # -- discovery callbacks --------------------------------------------------------------------

    def _handle_peer(self, record: PeerRecord, topic: bytes) -> bool:
        """A lookup found ``record`` under ``topic``; True when it is a peer to dial."""
        key = record.public_key
        if self.closed or key == self.key_pair.public_key:
            return False
        peer = self._peer(key, client=True)
        peer.record = record
        peer._add_topic(topic)
        if peer.banned or key in self._slots:
            return False
        if not peer.prioritized or peer.server:
            peer._reset()
            if peer.waiting:
                self._retry.discard(peer)
                peer.waiting = False
        if not peer.waiting and not self.suspended:
            self._queue.push(peer)
        self._update()
        self._attempt_dials()
        return True

    def _spawn(self, fn: Callable[[], Coroutine[Any, Any, object]]) -> None:
        if self._tg is None or self.closed:
            return
        self._tg.start_soon(fn)

    # -- dialling -------------------------------------------------------------------------------

    def _saturated(self) -> bool:
        return self.limits.saturated(
            total_slots=len(self._slots), client_slots=self._slots.count(is_initiator=True)
        )

    def _attempt_dials(self) -> None:
        if self.closed or self.suspended or self._tg is None:
            return
        while self.limits.may_dial(
            connecting=self.connecting, client_slots=self._slots.count(is_initiator=True)
        ):
            within = self.limits.within_max_peers(len(self._slots))
            peer = self._queue.pop(within_max_peers=within)
            if peer is None:
                break
            if peer.banned or peer.public_key in self._slots:
                self._settle(peer.public_key)
                self._maybe_forget(peer)
                continue
            self._start_dial(peer)
        if self.connecting == 0 and self._saturated():
            self._settle_flushes(self._flushes.settle_all(), True)

    def _start_dial(self, peer: PeerInfo) -> None:
        assert self._tg is not None
        slot = self._slots.claim(peer.public_key, is_initiator=True)
        scope = anyio.CancelScope()
        self._dial_scopes[slot] = scope
        self.connecting += 1
        self.stats.client_attempted += 1
        self._tg.start_soon(self._dial, slot, peer, scope)
        self._update()

    async def _dial(self, slot: Slot[Connection], peer: PeerInfo, scope: anyio.CancelScope) -> None:
        conn: Connection | None = None
        failure: BaseException | None = None
        try:
            with scope:
                record = peer.record or await self.dht.find_peer(peer.public_key)
                if record is None:
                    raise PeerNotFoundError("no record for this public key")
                if not record.direct_addresses:
                    raise DialError("the peer's record has no direct address")
                first = record.direct_addresses[0]
                if await self._firewalled(peer.public_key, (first.host, first.port)):
                    raise PeerBannedError("peer is banned or firewalled")
                conn = await self._dialer.dial(
                    record, key_pair=self.key_pair, topics=tuple(peer.topics)
                )
        except (P2PSwarmError, OSError, anyio.BrokenResourceError, TimeoutError) as exc:
            failure = exc
            logger.debug("dial %s failed: %r", peer.public_key.hex()[:16], exc)
        finally:
            self._dial_scopes.pop(slot, None)
            self.connecting -= 1
        if slot.superseded or self.closed or scope.cancelled_caught or conn is None:
            if conn is not None:
                await close_quietly(conn)
            self._slots.release(slot)
            if failure is not None and peer.public_key not in self._slots:
                peer._disconnected(anyio.current_time())
                if peer.explicit:
                    peer.record = None  # find it again: it may have moved
                self._schedule_retry(peer)
            self._settle(peer.public_key)
            self._maybe_forget(peer)
            self._update()
            self._attempt_dials()
            return
        self._open(slot, conn, peer)
        self._attempt_dials()  # this dial's place in max_parallel is free for the next peer

    async def _firewalled(self, key: bytes, address: tuple[str, int]) -> bool:
        """The firewall verdict: our own key and banned peers are refused without asking;
        a peer the user firewall rejects is banned, so it is asked once per peer."""
        if key == self.key_pair.public_key:
            return True
        peer = self.peers.get(key)
        if peer is not None and peer.banned:
            return True
        if self._firewall is None:
            return False
        if not await call_maybe_async(self._firewall, key, address):
            return False
        peer = self._peer(key, client=False)
        if not peer.banned:
            self._ban_reason[key] = PeerBannedError("Peer is firewalled")
            peer.ban(True)
        return True

    # -- accepting --------------------------------------------------------------------------------

    async def _serve(self, listener: anyio.abc.Listener[anyio.abc.SocketStream]) -> None:
        sockets = getattr(listener, "listeners", [listener])
        with self._listener_scope:
            async with anyio.create_task_group() as tg:
                for inner in sockets:
                    tg.start_soon(self._accept_loop, inner)

    async def _accept_loop(self, listener: anyio.abc.SocketListener) -> None:
        assert self._tg is not None
        while True:
            try:
                stream = await listener.accept()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError) as exc:
                if not self.closed:
                    logger.warning("the swarm stopped accepting connections: %r", exc)
                return
            self._tg.start_soon(self._accept, stream)

    async def _accept(self, stream: anyio.abc.SocketStream) -> None:
        if self.closed or self.suspended:
            await close_quietly(stream)
            return
        address = stream.extra(anyio.abc.SocketAttribute.remote_address)
        remote = (str(address[0]), int(address[1])) if isinstance(address, tuple) else ("", 0)
        claimed: list[Slot[Connection]] = []
        conn: Connection | None = None
        try:
            conn = await accept_handshake(
                stream,
                key_pair=self.key_pair,
                remote_address=remote,
                authorize=partial(self._authorize, claimed),
                keepalive=self._conn_options["keepalive"],
                idle_timeout=self._conn_options["idle_timeout"],
                handshake_timeout=self._conn_options["handshake_timeout"],
            )
        except (P2PSwarmError, OSError, anyio.BrokenResourceError) as exc:
            logger.debug("incoming handshake from %r failed: %r", remote, exc)
        if conn is None or not claimed or claimed[-1].superseded or self.closed:
            await close_quietly(conn or stream)
            for slot in claimed:
                self._slots.release(slot)
                peer = self.peers.get(slot.remote_key)
                self._settle(slot.remote_key)
                if peer is not None and slot.remote_key not in self._slots:
                    self._schedule_retry(peer)  # it may have replaced a working connection
                    self._maybe_forget(peer)
            self._update()
            self._attempt_dials()
            return
        self._open(claimed[-1], conn, self.peers[claimed[-1].remote_key])

    async def _authorize(
        self,
        claimed: list[Slot[Connection]],
        key: bytes,
        address: tuple[str, int],
        topics: Sequence[bytes],
    ) -> bool:
        """Decide on an incoming handshake as soon as its key is known: firewall, ban,
        ``max_server_connections`` and dedup. Returning True takes the peer's slot."""
        if self.closed or self.suspended or await self._firewalled(key, address):
            return False
        existing = self._slots.get(key)
        conn = existing.connection if existing is not None else None
        peer = self.peers.get(key)
        verdict = admit_incoming(
            local_key=self.key_pair.public_key,
            remote_key=key,
            accepting=not (self.closed or self.suspended),
            banned=peer is not None and peer.banned,
            existing=None
            if existing is None
            else (conn is not None, *((conn.bytes_read, conn.bytes_written) if conn else (0, 0))),
            server_slots=self._slots.count(is_initiator=False),
            limits=self.limits,
        )
        if verdict is Admission.REFUSE_AND_PROBE and conn is not None:
            self._spawn(partial(send_probe, conn))
        if verdict not in (Admission.ACCEPT, Admission.REPLACE):
            return False
        peer = self._peer(key, client=False)
        for topic in topics:
            if topic in self._discoveries:
                peer._add_topic(topic)
        claimed.append(self._slots.claim(key, is_initiator=False))
        if existing is not None:
            await self._close_slot(existing)  # before the new one reaches the application
        return True

    # -- open connections -------------------------------------------------------------------------

    def _open(self, slot: Slot[Connection], conn: Connection, peer: PeerInfo) -> None:
        """Hand a connection that passed dedup to the application (no await before this)."""
        assert self._tg is not None
        slot.connection = conn
        self.connections.add(conn)
        peer._connected(anyio.current_time(), client=slot.is_initiator)
        if slot.is_initiator:
            self.stats.client_opened += 1
        else:
            self.stats.server_opened += 1
        self._settle(peer.public_key)
        self._tg.start_soon(self._watch, slot, conn, peer)
        if self._on_connection:
            self._tg.start_soon(run_handlers, list(self._on_connection), conn, peer)
        self._update()

    async def _watch(self, slot: Slot[Connection], conn: Connection, peer: PeerInfo) -> None:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(keepalive_loop, conn)
                await conn.wait_closed()
                tg.cancel_scope.cancel()
        finally:
            self._retire(slot, peer)

    def _retire(self, slot: Slot[Connection], peer: PeerInfo) -> None:
        """A connection closed: count it, and schedule the redial policy says is due."""
        if slot.retired:
            return
        slot.retired = True
        self._slots.release(slot)
        if slot.connection is not None and slot.connection in self.connections:
            self.connections.discard(slot.connection)
            if slot.is_initiator:
                self.stats.client_closed += 1
            else:
                self.stats.server_closed += 1
        peer._disconnected(anyio.current_time())
        if peer.public_key not in self._slots:
            self._schedule_retry(peer)
        self._maybe_forget(peer)
        self._update()
        self._attempt_dials()

    async def _close_slot(self, slot: Slot[Connection]) -> None:
        slot.superseded = True
        scope = self._dial_scopes.get(slot)
        if scope is not None:
            scope.cancel()
        if slot.connection is not None:
            await close_quietly(slot.connection)
            peer = self.peers.get(slot.remote_key)
            if peer is not None:
                self._retire(slot, peer)

    async def _close_all_connections(self) -> None:
        with anyio.CancelScope(shield=True):
            for slot in list(self._slots):
                await self._close_slot(slot)

    # -- retries and bookkeeping ------------------------------------------------------------------

    def _justified(self, peer: PeerInfo) -> bool:
        client_topics = [t for t, d in self._discoveries.items() if d.is_client]
        return worth_dialling(peer, client_topics)

    def _schedule_retry(self, peer: PeerInfo) -> None:
        if self.closed or self.suspended or peer.waiting or peer.queued:
            return
        if not self._justified(peer):
            return
        if self._retry.add(peer, anyio.current_time()):
            peer.waiting = True
            self._retry_wakeup.set()

    def _unschedule(self, peer: PeerInfo) -> None:
        if peer.queued:
            self._queue.remove(peer)
        if peer.waiting:
            self._retry.discard(peer)
            peer.waiting = False
        self._settle(peer.public_key)

    async def _retry_loop(self) -> None:
        while True:
            for peer in self._retry.due(anyio.current_time()):
                peer.waiting = False
                if peer.banned or peer.public_key in self._slots or not self._justified(peer):
                    self._maybe_forget(peer)
                    continue
                self._queue.push(peer)
            self._attempt_dials()
            deadline = self._retry.next_deadline()
            self._retry_wakeup = anyio.Event()
            delay = math.inf if deadline is None else deadline - anyio.current_time()
            with anyio.move_on_after(max(delay, 0.0)):
                await self._retry_wakeup.wait()

    def _peer(self, key: bytes, *, client: bool) -> PeerInfo:
        peer = self.peers.get(key)
        if peer is None:
            peer = PeerInfo(key, client=client, on_ban=self._peer_banned)
            self.peers[key] = peer
        return peer

    def _peer_banned(self, peer: PeerInfo, banned: bool) -> None:
        if not banned:
            self._maybe_forget(peer)
            return
        self.stats.banned_peers += 1
        self._unschedule(peer)
        reason = self._ban_reason.pop(peer.public_key, None) or PeerBannedError("Peer is banned")
        self._on_ban.emit(self._spawn_callback, peer, reason)
        self._update()

    def _maybe_forget(self, peer: PeerInfo) -> None:
        has_slot = peer.public_key in self._slots
        if peer._collectable(has_connection=has_slot) and self.peers.get(peer.public_key) is peer:
            del self.peers[peer.public_key]

    def _settle(self, key: bytes) -> None:
        self._settle_flushes(self._flushes.settle(key), True)

    def _settle_flushes(self, tokens: list[int], result: bool) -> None:
        for token in tokens:
            entry = self._flush_events.get(token)
            if entry is not None:
                entry[1][0] = result
                entry[0].set()

    def _update(self) -> None:
        self.stats.updates += 1
        if self._on_update:
            self._on_update.emit(self._spawn_callback)

    def _spawn_callback(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> bool:
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
