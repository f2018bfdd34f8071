"""The embedded zero-config network: swarms on one machine find each other with no setup.

No public p2pswarm DHT exists, so ``Swarm()`` with no ``bootstrap`` runs on a tiny DHT
that lives inside the p2pswarm processes of this machine, on loopback only:

* The first process binds the well-known UDP port ``127.0.0.1:49737`` (``port=`` or the
  environment variable ``P2PSWARM_LOCAL_PORT`` change it) and serves a persistent DHT node
  there: the *local bootstrap*. Later processes find that port taken, ping it, see a
  p2pswarm node answer, and join it.
* Members check the bootstrap every :data:`CHECK_INTERVAL` seconds: first by trying to bind
  its port (on loopback a successful bind proves nobody holds it any more), then by a
  bounded DHT ping (which also tells whether another member has taken over, because the
  new node answers with a new id). A bootstrap whose port stays bound but which stops
  answering is given a few checks (:data:`MAX_MISSES`) before the range is searched again,
  so a briefly stalled process does not split the network. When the bootstrap's process
  exits, every member tries to bind the port; the kernel lets exactly one win, and that
  one serves the new bootstrap node. The others see the port taken again, ping it, and
  re-bootstrap. Connections are TCP streams between the swarms themselves, so none of
  this touches them.
* A takeover is a *network change*: the new bootstrap starts empty, so every member
  re-announces what it had announced (:class:`LocalDiscovery` does that by itself) and
  tells the registered callbacks (``on_network_change``), which is where a swarm hooks
  ``swarm.network_changed`` to refresh its topics, so a pair that joined during the
  takeover still finds each other.
* A port held by something that is not a p2pswarm node (it does not answer a DHT ping)
  is skipped: the next ports of a small fixed range (:data:`FALLBACK_PORTS` in all) are
  tried, and a warning says so. A network already running on a later port of the range
  is joined rather than a second one started on a port that has come free meanwhile.

Nothing here binds anything but ``127.0.0.1``.

Why the members' DHT nodes are *ephemeral* (they query and announce but store nothing and
enter no routing table), even though persistent members would keep the records alive when
the bootstrap dies:

* A persistent member that exits without warning (a closed terminal, Ctrl-C) stays in the
  other nodes' routing tables, and every lookup that picks it pays the full retransmit
  budget before forgetting it. Local networks see exactly that churn (short-lived CLI
  commands), and "two terminals talk within a second" would not survive it.
* Surviving records buy little: the gap they would bridge is the takeover, which is bounded
  by :data:`CHECK_INTERVAL` plus one bind, after which every member re-announces within
  one round trip on loopback. Swarms re-announce every 10 minutes anyway.
* With one storing node the local network stays a star that is trivial to reason about
  and to inspect (``p2pswarm status``), and cannot partition.

So records live in the bootstrap process only, and are rebuilt by re-announcing.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any, Final

import anyio
import anyio.abc

from ..dht import DHTNode
from ..errors import DHTError
from ..keys import KeyPair
from ..peer_record import PeerAddress, PeerRecord
from ._local_probe import (
    LOCAL_HOST,
    PortState,
    ping_id,
    probe_node,
    probe_port,
    udp_port_free,
)
from .discovery_backend import DiscoveryBackend
from .network_config import (
    BOOTSTRAP_ENV,
    DEFAULT_LOCAL_PORT,
    FALLBACK_PORTS,
    PORT_ENV,
    bootstrap_from_env,
    check_port,
    local_port_from_env,
    parse_bootstrap,
)

__all__ = (
    "BOOTSTRAP_ENV",
    "CHECK_INTERVAL",
    "DEFAULT_LOCAL_PORT",
    "FALLBACK_PORTS",
    "LOCAL_HOST",
    "PORT_ENV",
    "LocalDiscovery",
    "LocalNetwork",
    "PortState",
    "bootstrap_from_env",
    "local_port_from_env",
    "open_default_backend",
    "parse_bootstrap",
    "probe_port",
)

logger = logging.getLogger("p2pswarm.local_network")

Address = tuple[str, int]
ChangeCallback = Callable[[], Awaitable[None] | None]

#: Seconds between two checks of the bootstrap by a member.
CHECK_INTERVAL: Final = 0.5
#: Unanswered checks (each a full probe budget) before a bound but silent bootstrap is
#: given up on and the range is searched again.
MAX_MISSES: Final = 3


# -- the local network --------------------------------------------------------------------------


class LocalNetwork:
    """This process's view of the local network: where its bootstrap is, and whether we
    serve it. ``async with LocalNetwork() as network:`` finds (or becomes) the bootstrap
    and watches it until the block exits; a bootstrap node we serve closes with it.

    ``port`` is the base of the port range (default: ``P2PSWARM_LOCAL_PORT`` or 49737);
    tests pass their own free port so they never meet a user's network or each other.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        check_interval: float = CHECK_INTERVAL,
        fallback_ports: int = FALLBACK_PORTS,
    ) -> None:
        base = local_port_from_env() if port is None else check_port(int(port), "port")
        if check_interval <= 0:
            raise ValueError("check_interval must be positive")
        if not 1 <= fallback_ports <= FALLBACK_PORTS:
            raise ValueError(f"fallback_ports must be 1..{FALLBACK_PORTS}")
        self.base_port = base
        self.ports = range(base, base + fallback_ports)
        self.check_interval = check_interval
        self._port: int | None = None
        self._bootstrap_id: bytes | None = None
        self._hosted: DHTNode | None = None
        self._probe: DHTNode | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._callbacks: list[Callable[[], Awaitable[None]]] = []
        self._changed = anyio.Event()
        self._warned: set[int] = set()
        self._misses = 0
        #: How many times the bootstrap changed (takeovers seen) since we joined.
        self.generation = 0

    # -- public state -------------------------------------------------------------------------

    @property
    def bootstrap(self) -> list[Address]:
        """The bootstrap list for this process's DHT nodes: ``[("127.0.0.1", port)]``."""
        if self._port is None:
            raise RuntimeError("the local network is not running")
        return [(LOCAL_HOST, self._port)]

    @property
    def port(self) -> int:
        """The port the local bootstrap is on (the base port unless it was taken)."""
        if self._port is None:
            raise RuntimeError("the local network is not running")
        return self._port

    @property
    def is_bootstrap(self) -> bool:
        """True while this process serves the local bootstrap node."""
        return self._hosted is not None

    @property
    def bootstrap_node(self) -> DHTNode | None:
        """The bootstrap node this process serves, or None when another process does."""
        return self._hosted

    @property
    def bootstrap_id(self) -> bytes | None:
        """The DHT id of the current bootstrap node."""
        return self._bootstrap_id

    def on_change(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Call ``await callback()`` after every bootstrap change (a takeover)."""
        self._callbacks.append(callback)

    async def wait_changed(self) -> None:
        """Return at the next bootstrap change."""
        await self._changed.wait()

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> LocalNetwork:
        if self._tg is not None:
            raise RuntimeError("a LocalNetwork can be entered only once")
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            self._probe = await self._start_node(probe_node())
            await self._settle()
            self._tg.start_soon(self._watch)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._close_nodes()
            self._tg.cancel_scope.cancel()
            with contextlib.suppress(BaseException):  # the first error is the one to report
                await self._tg.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await self._close_nodes()
        return await self._tg.__aexit__(*exc_info)

    async def _close_nodes(self) -> None:
        for node in (self._hosted, self._probe):
            if node is not None:
                await node.aclose()
        self._hosted = None

    async def _start_node(self, node: DHTNode) -> DHTNode:
        """Run ``node`` in its own task (its task group must be exited where it was entered)."""
        assert self._tg is not None

        async def serve(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            async with node:
                task_status.started()
                await node.wait_closed()

        await self._tg.start(serve)
        return node

    # -- finding or becoming the bootstrap ----------------------------------------------------

    async def _try_host(self, port: int) -> bool:
        """Bind ``port`` and serve the bootstrap there; False when the port is taken."""
        node = DHTNode(bootstrap=[], host=LOCAL_HOST, port=port, ephemeral=False)
        try:
            await self._start_node(node)
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                raise
            return False
        self._hosted, self._port, self._bootstrap_id = node, port, node.node_id
        logger.info("serving the local network's bootstrap on %s:%d", LOCAL_HOST, port)
        return True

    async def _identify(self, port: int) -> bytes | None:
        assert self._probe is not None
        node_id = await ping_id(self._probe, port)
        if node_id is None and port not in self._warned:
            self._warned.add(port)
            logger.warning(
                "%s:%d is in use by something that is not a p2pswarm node; "
                "the local network tries the next port",
                LOCAL_HOST,
                port,
            )
        return node_id

    async def _settle(self) -> None:
        """Join the network running in the range, or start it on the first free port.

        Every occupied port is pinged at once, so foreign ports cost one probe budget in
        all; the lowest port answering as a p2pswarm bootstrap wins.
        """
        free = [port for port in self.ports if udp_port_free(port)]
        occupied = [port for port in self.ports if port not in free]
        answers: dict[int, bytes | None] = {}

        async def identify(port: int) -> None:
            answers[port] = await self._identify(port)

        async with anyio.create_task_group() as tg:
            for port in occupied:
                tg.start_soon(identify, port)
        for port in occupied:
            node_id = answers.get(port)
            if node_id is not None:
                self._join(port, node_id)
                return
        for port in free:
            if await self._try_host(port):
                self._announce_fallback()
                return
            # Someone bound it between our check and our bind: it is probably one of us.
            node_id = await self._identify(port)
            if node_id is not None:
                self._join(port, node_id)
                return
        raise DHTError(
            f"no usable port for the local network in {LOCAL_HOST}:"
            f"{self.ports[0]}-{self.ports[-1]}: every one is held by something else "
            f"(set {PORT_ENV} to another base port)"
        )

    def _join(self, port: int, node_id: bytes) -> None:
        self._port, self._bootstrap_id = port, node_id
        logger.debug("joined the local network at %s:%d", LOCAL_HOST, port)
        self._announce_fallback()

    def _announce_fallback(self) -> None:
        if self._port is not None and self._port != self.base_port:
            logger.warning(
                "the local network runs on %s:%d instead of %s:%d (that port is taken)",
                LOCAL_HOST,
                self._port,
                LOCAL_HOST,
                self.base_port,
            )

    # -- watching the bootstrap ---------------------------------------------------------------

    async def _watch(self) -> None:
        while self._hosted is None:
            await anyio.sleep(self.check_interval)
            before = (self._port, self._bootstrap_id)
            await self._check()
            if (self._port, self._bootstrap_id) != before:
                await self._changed_now()

    async def _check(self) -> None:
        """One bounded look at the bootstrap: take it over, follow a takeover, or re-settle."""
        port = self.port
        if udp_port_free(port) and await self._try_host(port):
            logger.info("the local bootstrap went away; this process took it over")
            return
        node_id = await ping_id(self._probe, port) if self._probe is not None else None
        if node_id is not None:
            self._misses = 0
            if node_id != self._bootstrap_id:
                logger.info("the local bootstrap was taken over by another process")
                self._bootstrap_id = node_id
            return
        # Its port is still bound but nothing answers: a busy machine can stall the
        # bootstrap's process for a moment, so only give up on it after a few checks.
        self._misses += 1
        if self._misses < MAX_MISSES:
            return
        self._misses = 0
        logger.info("the local bootstrap on %s:%d stopped answering", LOCAL_HOST, port)
        await self._settle()

    async def _changed_now(self) -> None:
        self.generation += 1
        event, self._changed = self._changed, anyio.Event()
        event.set()
        for callback in list(self._callbacks):
            try:
                await callback()
            except Exception:
                logger.exception("a local network change callback failed")


# -- the discovery backend on it ----------------------------------------------------------------


class LocalDiscovery:
    """A :class:`~p2pswarm.networks.discovery_backend.DiscoveryBackend` on the local network.

    It owns a :class:`LocalNetwork` and an ephemeral DHT node bootstrapped from it. After a
    takeover it re-bootstraps, re-announces everything it has announced and not withdrawn,
    then calls the ``on_network_change`` callbacks (a swarm refreshes its topics there).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        node_port: int = 0,
        check_interval: float = CHECK_INTERVAL,
    ) -> None:
        self.network = LocalNetwork(port=port, check_interval=check_interval)
        self._node_port = node_port
        self._node: DHTNode | None = None
        self._node_bootstrap: list[Address] = []
        self._network_entered = False
        self._tg: anyio.abc.TaskGroup | None = None
        self._topics: dict[tuple[bytes, bytes], tuple[KeyPair, int]] = {}
        self._selves: dict[bytes, tuple[KeyPair, int, tuple[PeerAddress, ...]]] = {}
        self._callbacks: list[ChangeCallback] = []
        self._closed = False

    @property
    def node(self) -> DHTNode:
        """The DHT node this backend queries through (replaced if the network moved)."""
        if self._node is None:
            raise RuntimeError("the local discovery backend is not running")
        return self._node

    def on_network_change(self, callback: ChangeCallback) -> ChangeCallback:
        """Register ``callback()`` (sync or async), called after each takeover once our
        records are re-announced. Usable as a decorator. Registering the same callback
        twice (a swarm and its owner both hooking ``swarm.network_changed``) calls it once."""
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        return callback

    async def __aenter__(self) -> LocalDiscovery:
        # Entered and exited by hand, not through an AsyncExitStack: on asyncio, a stack
        # unwinding a cancellation through task groups can chain the CancelledError to
        # itself (the stack's context fix-up on a re-raised instance), and anyio then
        # loops forever walking that chain.
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            await self.network.__aenter__()
            self._network_entered = True
            await self._start_node(self._node_port)
            self.network.on_change(self._network_changed)
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the DHT node and, if this process serves it, the local bootstrap.

        Must run in the task that entered the backend (its task groups are exited here).
        """
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            if self._node is not None:
                await self._node.aclose()
        try:
            if self._network_entered:
                await self.network.__aexit__(None, None, None)
        finally:
            if self._tg is not None:
                self._tg.cancel_scope.cancel()
                await self._tg.__aexit__(None, None, None)

    async def _start_node(self, port: int) -> None:
        assert self._tg is not None
        bootstrap = self.network.bootstrap
        try:
            node = DHTNode(bootstrap=bootstrap, host=LOCAL_HOST, port=port, ephemeral=True)
            await self._tg.start(_serve, node)
        except OSError:
            if port == 0:
                raise
            node = DHTNode(bootstrap=bootstrap, host=LOCAL_HOST, port=0, ephemeral=True)
            await self._tg.start(_serve, node)
        self._node, self._node_bootstrap = node, bootstrap

    async def _network_changed(self) -> None:
        if self._closed:
            return
        if self.network.bootstrap != self._node_bootstrap:
            old = self._node
            await self._start_node(0)
            if old is not None:
                await old.aclose()
        else:
            with contextlib.suppress(DHTError):
                await self.node.bootstrap()
        await self._reannounce()
        for callback in list(self._callbacks):
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("a network change callback failed")

    async def _reannounce(self) -> None:
        async def again(call: Callable[[], Awaitable[None]], what: str) -> None:
            try:
                await call()
            except DHTError as exc:
                logger.warning("re-announcing %s after a takeover failed: %s", what, exc)

        node = self.node
        async with anyio.create_task_group() as tg:
            for (topic, _), (key_pair, port) in list(self._topics.items()):
                tg.start_soon(
                    again, lambda t=topic, k=key_pair, p=port: node.announce(t, k, p), "a topic"
                )
            for key_pair, port, addresses in list(self._selves.values()):
                tg.start_soon(
                    again,
                    lambda k=key_pair, p=port, a=addresses: node.announce_self(k, p, addresses=a),
                    "our key",
                )

    # -- DiscoveryBackend ---------------------------------------------------------------------

    async def announce(self, topic: bytes, key_pair: KeyPair, port: int) -> None:
        await self.node.announce(topic, key_pair, port)
        self._topics[(bytes(topic), key_pair.public_key)] = (key_pair, port)

    async def unannounce(self, topic: bytes, key_pair: KeyPair) -> None:
        self._topics.pop((bytes(topic), key_pair.public_key), None)
        await self.node.unannounce(topic, key_pair)

    async def announce_self(
        self, key_pair: KeyPair, port: int, *, addresses: Sequence[PeerAddress] = ()
    ) -> None:
        await self.node.announce_self(key_pair, port, addresses=addresses)
        self._selves[key_pair.public_key] = (key_pair, port, tuple(addresses))

    async def unannounce_self(self, key_pair: KeyPair) -> None:
        self._selves.pop(key_pair.public_key, None)
        await self.node.unannounce_self(key_pair)

    def lookup(self, topic: bytes) -> Any:
        return self.node.lookup(topic)

    async def find_peer(self, public_key: bytes) -> PeerRecord | None:
        return await self.node.find_peer(public_key)

    def __repr__(self) -> str:
        where = f"{LOCAL_HOST}:{self.network._port}" if self.network._port else "not running"
        role = "bootstrap" if self.network.is_bootstrap else "member"
        return f"<LocalDiscovery {where} {role}>"


async def _serve(node: DHTNode, *, task_status: anyio.abc.TaskStatus[None]) -> None:
    async with node:
        task_status.started()
        await node.wait_closed()


async def open_default_backend(
    stack: AsyncExitStack, *, host: str = LOCAL_HOST, port: int = 0
) -> DiscoveryBackend:
    """What ``Swarm(bootstrap=None, dht=None)`` discovers through, entered on ``stack``.

    ``P2PSWARM_BOOTSTRAP`` set: an ephemeral DHT node on ``host`` bootstrapped from it (a
    real network by configuration alone). Otherwise the embedded local network, loopback
    only whatever ``host`` says; its DHT node takes ``port`` when free.

    Put it alone on its stack, or last: an exit stack that unwinds an exception through a
    task group after another callback raised can chain that exception to itself (see
    ``Swarm.__aenter__``). The swarm itself enters the same choice with plain ``async
    with`` blocks (``p2pswarm.networks._backend.open_backend``) and, so that a takeover refreshes
    its topics, registers its ``network_changed`` on a :class:`LocalDiscovery`.
    """
    bootstrap = bootstrap_from_env()
    if bootstrap is not None:
        node = DHTNode(bootstrap=bootstrap, host=host, port=0, ephemeral=True)
        await stack.enter_async_context(node)
        return node
    backend = LocalDiscovery(node_port=port)
    await stack.enter_async_context(backend)
    return backend
