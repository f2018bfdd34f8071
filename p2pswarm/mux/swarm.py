"""SwarmMux: one :class:`~p2pswarm.mux.Mux` per swarm connection, shared by protocols.

Several protocols (rpc, gossip, node info) want channels on every connection of a swarm,
and only one reader may read a connection. ``SwarmMux.of(swarm)`` registers one
``on_connection`` handler on the swarm that makes the connection's Mux, calls every
``setup(mux, peer_info)`` registered with :meth:`SwarmMux.on_mux` (synchronously, before
the Mux reads anything: each side's channels are opened before the other's opens can
arrive, so nothing is rejected for arriving early), then runs the Mux until the connection
ends. Register setups before joining topics, as JS apps create their channels in the
``connection`` event.

Nothing in :class:`~p2pswarm.swarm.Swarm` changes: this is an ordinary handler. Do not
read such connections yourself.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..connection import Connection
from ..swarm.peer_info import PeerInfo
from ._mux import Mux

if TYPE_CHECKING:
    from ..swarm import Swarm

__all__ = ("MuxSetup", "SwarmMux")

logger = logging.getLogger("p2pswarm.mux")

#: ``setup(mux, peer_info)``: create and open this protocol's channels on a new connection.
MuxSetup = Callable[[Mux, PeerInfo], Any]

_hubs: weakref.WeakKeyDictionary[Any, SwarmMux] = weakref.WeakKeyDictionary()


class SwarmMux:
    """The muxes of one swarm's connections; get it with :meth:`of`."""

    def __init__(self, swarm: Swarm, **mux_options: Any) -> None:
        if swarm in _hubs:
            raise ValueError("this swarm already has a SwarmMux: use SwarmMux.of(swarm)")
        _hubs[swarm] = self
        self.swarm = swarm
        self._options = mux_options
        self._setups: list[MuxSetup] = []
        self._muxes: dict[bytes, Mux] = {}
        swarm.on_connection(self._on_connection)

    @classmethod
    def of(cls, swarm: Swarm, **mux_options: Any) -> SwarmMux:
        """The swarm's hub, made (and its handler registered) on first use."""
        hub = _hubs.get(swarm)
        return hub if hub is not None else cls(swarm, **mux_options)

    def on_mux(self, setup: MuxSetup) -> MuxSetup:
        """Register ``setup(mux, peer_info)`` for every connection's Mux, before it reads;
        muxes already running get it at once. Usable as a decorator."""
        self._setups.append(setup)
        for mux in list(self._muxes.values()):
            self._run_setup(setup, mux)
        return setup

    def remove_setup(self, setup: MuxSetup) -> bool:
        try:
            self._setups.remove(setup)
        except ValueError:
            return False
        return True

    def get(self, public_key: bytes) -> Mux | None:
        """The Mux of the connection to ``public_key``, if connected."""
        return self._muxes.get(public_key)

    def __iter__(self) -> Iterator[Mux]:
        return iter(list(self._muxes.values()))

    def __len__(self) -> int:
        return len(self._muxes)

    def _run_setup(self, setup: MuxSetup, mux: Mux) -> None:
        try:
            setup(mux, mux.peer)
        except Exception:
            logger.exception("a mux setup failed for %r", mux)

    async def _on_connection(self, connection: Connection, peer: PeerInfo) -> None:
        mux = Mux.of(connection, **self._options)
        mux.peer = peer
        key = connection.remote_public_key
        self._muxes[key] = mux
        try:
            for setup in list(self._setups):
                self._run_setup(setup, mux)
            await mux.run()
        finally:
            if self._muxes.get(key) is mux:
                del self._muxes[key]
