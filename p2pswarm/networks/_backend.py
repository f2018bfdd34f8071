"""How a swarm gets its discovery backend, and how it makes itself findable by key.

One place decides what ``Swarm(bootstrap=None, dht=None)`` means: the embedded zero-config
local network (:mod:`p2pswarm.networks.local_network`), or a DHT named by ``P2PSWARM_BOOTSTRAP``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import random
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import anyio

from ..errors import DHTError
from ..keys import KeyPair
from .discovery_backend import (
    FAILED_ROUND_RETRY,
    REFRESH_INTERVAL,
    REFRESH_JITTER,
    DiscoveryBackend,
)
from .network_config import bootstrap_from_env

if TYPE_CHECKING:
    from ..dht import DHTNode

__all__ = (
    "LOOPBACK",
    "WILDCARD",
    "SelfAnnouncer",
    "check_discovery_options",
    "default_host",
    "key_topic",
    "open_backend",
)

logger = logging.getLogger("p2pswarm.swarm")


#: Where a swarm listens when its network is this machine, and when it is not.
LOOPBACK: Final = "127.0.0.1"
WILDCARD: Final = "0.0.0.0"


def default_host(
    bootstrap: Sequence[tuple[str, int]] | None,
    env_bootstrap: Sequence[tuple[str, int]] | None,
) -> str:
    """Where a swarm listens when ``host`` is not given: reachable by the peers of its
    network, no more. Loopback for the embedded local network (no ``bootstrap`` and no
    ``env_bootstrap``, i.e. ``P2PSWARM_BOOTSTRAP``) and for a bootstrap list that is all
    loopback (a testnet; an empty list too); every interface as soon as one bootstrap
    node is elsewhere, since peers found through it are elsewhere too."""
    nodes = bootstrap if bootstrap is not None else env_bootstrap
    if nodes is None or all(_is_loopback(host) for host, _ in nodes):
        return LOOPBACK
    return WILDCARD


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: resolved elsewhere, so not this machine


def check_discovery_options(bootstrap: Sequence[tuple[str, int]] | None, dht: object) -> None:
    """Raise a clear error for discovery options that cannot work."""
    if dht is not None and not isinstance(dht, DiscoveryBackend):
        raise TypeError("dht must implement p2pswarm.networks.discovery_backend.DiscoveryBackend")
    if bootstrap is not None and (isinstance(bootstrap, str | bytes) or dht is not None):
        raise TypeError("bootstrap must be a list of (host, port), and not given with dht")


@asynccontextmanager
async def open_backend(
    bootstrap: Sequence[tuple[str, int]] | None,
    dht: DiscoveryBackend | None,
    host: str,
    port: int,
) -> AsyncIterator[DiscoveryBackend]:
    """The backend to use: ``dht`` as given (the caller closes it); with no ``bootstrap``
    the default network (a DHT named by ``P2PSWARM_BOOTSTRAP``, else the embedded local
    one); else an ephemeral DHT node on ``host`` bootstrapped from ``bootstrap``. Those are
    the swarm's (closed on exit) and take ``port`` when free.

    Plain ``async with`` blocks, no AsyncExitStack: see ``Swarm.__aenter__`` for the
    exception-context cycle a stack can build while a cancellation unwinds.
    """
    if dht is not None:
        yield dht
        return
    if bootstrap is None:
        from .local_network import LocalDiscovery

        bootstrap = bootstrap_from_env()
        if bootstrap is None:
            async with LocalDiscovery(node_port=port) as local:
                yield local
            return
        port = 0
    from ..dht import DHTNode

    try:
        node = DHTNode(bootstrap=list(bootstrap), host=host, port=port, ephemeral=True)
        await node.__aenter__()
    except OSError:
        if port == 0:
            raise
        node = DHTNode(bootstrap=list(bootstrap), host=host, port=0, ephemeral=True)
        await node.__aenter__()
    async with _entered(node):
        yield node


@asynccontextmanager
async def _entered(node: DHTNode) -> AsyncIterator[None]:
    """Exit an already entered node with the block's exception, as ``async with`` would."""
    try:
        yield
    except BaseException as exc:
        if not await node.__aexit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        await node.__aexit__(None, None, None)


def key_topic(public_key: bytes) -> bytes:
    """The topic a swarm announces itself under so ``join_peer(public_key)`` finds it."""
    return hashlib.blake2b(public_key, digest_size=32).digest()


@runtime_checkable
class _AnnouncesSelf(Protocol):
    """A backend with a separate record kind for "this key listens here" (DHTNode)."""

    async def announce_self(self, key_pair: KeyPair, port: int) -> None: ...

    async def unannounce_self(self, key_pair: KeyPair) -> None: ...


class SelfAnnouncer:
    """``swarm.listen()``: announce the swarm under its key, and keep the record fresh."""

    def __init__(self, backend: DiscoveryBackend, key_pair: KeyPair, port: int) -> None:
        self._backend = backend
        self._key_pair = key_pair
        self._port = port
        self._started = False
        self._first = anyio.Event()
        self._error: Exception | None = None
        self._announced = False

    async def _announce(self) -> None:
        if isinstance(self._backend, _AnnouncesSelf):
            await self._backend.announce_self(self._key_pair, self._port)
        else:
            await self._backend.announce(
                key_topic(self._key_pair.public_key), self._key_pair, self._port
            )
        self._announced = True

    async def _run(self) -> None:
        rng = random.Random()
        failures = 0
        while True:
            try:
                await self._announce()
                self._error = None
                failures = 0
                delay = REFRESH_INTERVAL + rng.uniform(0, REFRESH_JITTER)
            except Exception as exc:
                self._error = exc
                logger.debug("announcing our key failed: %r", exc)
                # Soon again, as a failed discovery round: 1 s, 2 s, 4 s, ... up to 10 min.
                delay = min(FAILED_ROUND_RETRY * 2.0**failures, REFRESH_INTERVAL)
                failures += 1
            self._first.set()
            await anyio.sleep(delay)

    async def ensure(
        self, spawn: Callable[[Callable[[], Coroutine[Any, Any, object]]], object]
    ) -> None:
        """Start announcing (once) and wait for the first announce; raise if it failed."""
        if not self._started:
            self._started = True
            spawn(self._run)
        await self._first.wait()
        if self._error is not None and not self._announced:
            raise DHTError(f"could not announce this swarm's key: {self._error}")

    async def withdraw(self) -> None:
        """Best-effort removal of our key record (on close)."""
        if not self._announced:
            return
        self._announced = False
        with anyio.move_on_after(5.0):
            try:
                if isinstance(self._backend, _AnnouncesSelf):
                    await self._backend.unannounce_self(self._key_pair)
                else:
                    await self._backend.unannounce(
                        key_topic(self._key_pair.public_key), self._key_pair
                    )
            except Exception as exc:
                logger.debug("withdrawing our key record failed: %r", exc)
