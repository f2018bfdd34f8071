"""What connecting and serving need of their HyperDHT node, as a Protocol.

:mod:`.connect`, :mod:`.server` and :mod:`.router` take the node as a :class:`ConnectHost`
instead of importing :class:`~.dht.HyperDHT`, which imports them: no import circle, and the
parts of the node they touch are listed in one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, Protocol

from ..keys import KeyPair
from ..protocol.hyperdht_connect import RelayInfo
from ..transports.udx import UDXSocket
from .announcer import Announced
from .punch_policy import RandomPunchBudget
from .rpc import Address, Reply
from .serving import Store
from .socket_pool import SocketPool

__all__ = ("ConnectHost", "Route", "RouteLookup")


class Route(Protocol):
    """A FIND_PEER reply naming a node that routes for a server."""

    @property
    def public_key(self) -> bytes: ...

    @property
    def from_address(self) -> Address: ...


class RouteLookup(Protocol):
    def __aiter__(self) -> AsyncIterator[Route]: ...

    def cancel(self) -> None: ...


class ConnectHost(Protocol):
    store: Store
    #: Listening servers by ``H(public_key)`` (values: :class:`~.server.Server`).
    servers: dict[bytes, Any]
    default_key_pair: KeyPair
    firewalled: bool
    clock: Callable[[], float]
    socket_pool: SocketPool
    punch_budget: RandomPunchBudget

    @property
    def closed(self) -> bool: ...

    def start_task(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None: ...

    def remote_address(self) -> Address | None: ...

    def stream_socket(self, client: bool | None = None) -> UDXSocket: ...

    def find_peer_routes(self, target: bytes) -> RouteLookup: ...

    async def request(
        self,
        to: Address,
        command: int,
        *,
        target: bytes | None = None,
        value: bytes | None = None,
        retries: int = ...,
        from_client: bool | None = None,
        send: Callable[[bytes, Address], None] | None = None,
    ) -> Reply: ...

    async def ping(self, to: Address, *, retries: int = ...) -> Reply: ...

    async def ping_from(self, to: Address, send: Callable[[bytes, Address], None]) -> Reply: ...

    def sample_nodes(self) -> list[Address]: ...

    def foreign_response(self, data: bytes, address: Address) -> None: ...

    def local_addresses(self) -> list[Address]: ...

    async def announce_relays(self, topic: bytes, key_pair: KeyPair) -> list[RelayInfo]: ...

    async def announce(
        self, topic: bytes, key_pair: KeyPair, relay_addresses: Any = ()
    ) -> list[Address]: ...

    async def announce_server(
        self, target: bytes, key_pair: KeyPair, nodes: Sequence[Address] | None = None
    ) -> Announced: ...

    async def unannounce(self, topic: bytes, key_pair: KeyPair) -> None: ...
