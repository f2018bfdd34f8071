"""HyperDHT: a dht-rpc node that speaks HyperDHT's commands, as a client and as a server.

``async with HyperDHT(bootstrap=[(host, port)]) as dht:`` joins a network of JS and Python
nodes. As a client it looks topics up, announces on them, finds servers by public key and
puts and gets (im)mutable values, with the same queries as ``hyperdht/index.js``: a LOOKUP (or
FIND_PEER, *_GET) walk towards the target, then, for the mutating commands, one signed
request to each of the k closest nodes that replied, with that node's round-trip token.
Once persistent it also serves those commands to others (:class:`~.serving.Store`).

Nothing here defaults to the public network: ``bootstrap=()`` starts a network of one. Pass
:data:`PUBLIC_BOOTSTRAP` to join the real one.
"""

from __future__ import annotations

import contextlib
import socket
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Final, Generic, NamedTuple, Self, TypeVar

import anyio

from ..connection import DEFAULT_IDLE_TIMEOUT, DEFAULT_KEEPALIVE, Connection
from ..errors import CompactDecodeError, DHTError, MutablePutError, SeqReusedError, SeqTooLowError
from ..keys import KeyPair, check_public_key, check_topic
from ..protocol.compact import IPv4Address
from ..protocol.dht_rpc import InternalCommand
from ..protocol.hyperdht_connect import HandshakeMode, RelayInfo, decode_handshake
from ..protocol.hyperdht_holepunch import decode_holepunch
from ..protocol.hyperdht_messages import (
    MAX_MUTABLE_VALUE_SIZE,
    MAX_VALUE_SIZE,
    Announce,
    Command,
    MutablePutRequest,
    Peer,
    RemoteError,
    decode_lookup_reply,
    decode_mutable_get_response,
    decode_peer,
    encode_announce,
    encode_mutable_get_request,
    encode_mutable_put_request,
)
from ..transports.udx import UDXSocket, open_udx_socket
from .announcer import Announced, announce_to_best
from .connect import connect as _connect
from .iterative import Commit, Query
from .node import DHTRPCNode
from .punch_policy import RandomPunchBudget
from .records import hash32, sign_announce, sign_mutable, sign_unannounce, verify_mutable
from .relaying import RelayThroughOption
from .router import relay_handshake, relay_holepunch
from .rpc import Address, IncomingRequest, Reply
from .server import ConnectionHandler, FirewallCallback, Server
from .serving import LOOKUP_RECORDS, Request, Store
from .socket_pool import SocketPool

__all__ = (
    "PUBLIC_BOOTSTRAP",
    "PUBLIC_BOOTSTRAP_NAMES",
    "HyperDHT",
    "Lookup",
    "LookupReply",
    "MutableValue",
    "PeerReply",
)

#: The public Hyperswarm network's bootstrap nodes (``hyperdht/lib/constants.js``), as
#: (host, port). Only ever used when passed explicitly.
PUBLIC_BOOTSTRAP: Final[tuple[tuple[str, int], ...]] = (
    ("88.99.3.86", 49737),
    ("142.93.90.113", 49737),
    ("138.68.147.8", 49737),
)
#: The same nodes as upstream writes them: ``ip@hostname:port``.
PUBLIC_BOOTSTRAP_NAMES: Final = (
    "88.99.3.86@node1.hyperdht.org:49737",
    "142.93.90.113@node2.hyperdht.org:49737",
    "138.68.147.8@node3.hyperdht.org:49737",
)

T = TypeVar("T")


class LookupReply(NamedTuple):
    """One node's records for a topic: ``peers`` (each with ``public_key`` and
    ``relay_addresses``), the topic's ``bump``, and who answered."""

    peers: tuple[Peer, ...]
    bump: int
    from_address: Address
    node_id: bytes | None
    token: bytes | None


class PeerReply(NamedTuple):
    """A FIND_PEER answer: the server's record and the node holding its route."""

    peer: Peer
    from_address: Address
    token: bytes | None

    @property
    def public_key(self) -> bytes:
        return self.peer.public_key

    @property
    def relay_addresses(self) -> tuple[IPv4Address, ...]:
        return self.peer.relay_addresses


class MutableValue(NamedTuple):
    """A verified mutable value: the signature is the owner's over (seq, value)."""

    seq: int
    value: bytes
    signature: bytes
    from_address: Address | None = None


class Lookup(Generic[T]):
    """An iterative query whose useful replies come out decoded: ``async for`` it.

    Replies that do not decode (or carry nothing) are skipped, as JS's ``map`` does.
    Breaking out early leaves the walk to finish by itself (it is bounded); :meth:`cancel`
    stops it at once and ends the iteration. No async generator is involved, so an
    abandoned iteration needs no clean-up on either event loop.
    """

    def __init__(
        self,
        node: DHTRPCNode,
        target: bytes,
        command: int,
        decode: Callable[[Reply], T | None],
        *,
        value: bytes | None = None,
        commit: Commit | None = None,
    ) -> None:
        self._decode = decode
        self._pending: deque[T] = deque()
        self._arrived = anyio.Event()
        self._done = False
        self._cancelled = False
        self._error: DHTError | None = None
        self.query = node.query(
            target, command, value=value, commit=commit, on_reply=self._on_reply
        )
        node.start_task(self._watch)

    def _on_reply(self, reply: Reply) -> None:
        decoded = self._decode(reply)
        if decoded is not None:
            self._pending.append(decoded)
            self._arrived.set()

    async def _watch(self) -> None:
        try:
            await self.query.finished()
        except DHTError as exc:
            self._error = exc
        finally:
            self._done = True
            self._arrived.set()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        while True:
            if self._pending and not self._cancelled:
                return self._pending.popleft()
            if self._done or self._cancelled:
                if self._error is not None and not self._cancelled:
                    raise self._error
                raise StopAsyncIteration
            await self._arrived.wait()
            self._arrived = anyio.Event()

    async def finished(self) -> None:
        """Wait for the walk (and its commits) to end; raise what made it fail."""
        await self.query.finished()

    def cancel(self) -> None:
        self._cancelled = True
        self._arrived.set()
        self.query.cancel()


def _lookup_reply(reply: Reply) -> LookupReply | None:
    if not reply.value:
        return None
    try:
        decoded = decode_lookup_reply(reply.value)
    except CompactDecodeError:
        return None
    return LookupReply(
        decoded.peers, decoded.bump, reply.from_.address, reply.from_.id, reply.token
    )


def _peer_reply(reply: Reply) -> PeerReply | None:
    if not reply.value:
        return None
    try:
        return PeerReply(decode_peer(reply.value), reply.from_.address, reply.token)
    except CompactDecodeError:
        return None


def _check_value(value: object, limit: int) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"value must be bytes, got {type(value).__name__}")
    value = bytes(value)
    if len(value) > limit:
        raise ValueError(f"a value is at most {limit} bytes (one datagram), got {len(value)}")
    return value


class HyperDHT(DHTRPCNode):
    """A HyperDHT node. See the module docstring; options as :class:`~.node.DHTRPCNode`."""

    def __init__(
        self,
        bootstrap: Sequence[Address] = (),
        *,
        host: str = "0.0.0.0",
        port: int = 0,
        ephemeral: bool | None = None,
        store: Store | None = None,
        **options: object,
    ) -> None:
        super().__init__(
            bootstrap=bootstrap,
            host=host,
            port=port,
            ephemeral=ephemeral,
            **options,  # type: ignore[arg-type]
        )
        #: What this node serves to others once persistent.
        self.store = store if store is not None else Store(clock=self.clock)
        #: The key pair :meth:`connect` uses unless given one.
        self.default_key_pair = KeyPair.generate()
        #: Our listening servers by ``H(public_key)``.
        self.servers: dict[bytes, Server] = {}
        #: Handshakes dropped as undecodable, for tests and diagnostics.
        self.bad_handshakes = 0
        #: Holepunch messages dropped as undecodable.
        self.bad_holepunches = 0
        #: Sockets for hole punching, and the node's random-punch budget.
        self.socket_pool = SocketPool(self, host)
        self.punch_budget = RandomPunchBudget()
        self._sockets: contextlib.AsyncExitStack | None = None
        self._udx_server: UDXSocket | None = None
        self._udx_client: UDXSocket | None = None

    async def __aenter__(self) -> Self:
        if self._local_address is None and self._tg is None:
            await self._open_udx_sockets()
        try:
            await super().__aenter__()
        except BaseException:
            if self._sockets is not None:
                await self._sockets.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        for server in list(self.servers.values()):
            with anyio.CancelScope(shield=True):
                await server.aclose(unannounce=False)
        try:
            return await super().__aexit__(exc_type, exc, tb)
        finally:
            if self._sockets is not None:
                await self._sockets.aclose()

    # -- sockets ----------------------------------------------------------------------------

    async def _open_udx_sockets(self) -> None:
        """Run the node on UDX sockets (instead of plain UDP endpoints): dht-rpc datagrams
        and UDX stream packets share each socket, as in JS, so a connection's stream leaves
        from the address the DHT saw (its relay saw). Binding follows ``UDPEndpoint.bind``:
        the port asked, the next five, then any."""
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            port = self._port
            candidates = [port] if port == 0 else [*range(port, port + 6), 0]
            if not self._any_port:
                candidates = [port]
            failure: OSError | None = None
            for candidate in candidates:
                try:
                    server = await stack.enter_async_context(
                        open_udx_socket(self._host, candidate, on_message=self.datagram_received)
                    )
                except OSError as exc:
                    failure = exc
                    continue
                break
            else:
                assert failure is not None
                raise failure
            self._udx_server = server
            self._send = server.send_datagram
            self._local_address = server.local_address
            if self._two_sockets:
                client = await stack.enter_async_context(
                    open_udx_socket(self._host, 0, on_message=self._client_datagram)
                )
                self._udx_client = client
                self._client_send = client.send_datagram
                self._client_address = client.local_address
        except BaseException:
            await stack.aclose()
            raise
        self._sockets = stack

    def stream_socket(self, client: bool | None = None) -> UDXSocket:
        """The socket UDX streams use (JS ``dht.socket``): the client socket while
        firewalled, else the server socket; ``client`` picks one explicitly (the socket a
        direct request came in on)."""
        use_client = self.firewalled if client is None else client
        socket = self._udx_client if use_client and self._udx_client else self._udx_server
        if socket is None:
            raise DHTError("this node runs on an external socket: it cannot carry UDX streams")
        return socket

    def remote_address(self) -> Address | None:
        """Our address as others can reach it, if we are unfirewalled and our server
        socket's port is the one they see (``dht-rpc remoteAddress()``)."""
        public = self.public_address
        if self.firewalled or public is None or public[1] != self.address[1]:
            return None
        return public

    # -- connections ------------------------------------------------------------------------

    async def connect(
        self,
        public_key: bytes,
        *,
        key_pair: KeyPair | None = None,
        keepalive: float | None = DEFAULT_KEEPALIVE,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        relay_through: RelayThroughOption = None,
    ) -> Connection:
        """An encrypted connection to the server listening with ``public_key``
        (:mod:`.connect`); ``relay_through`` names a blind relay peer (:mod:`.relaying`)."""
        return await _connect(
            self,
            public_key,
            key_pair=key_pair,
            keepalive=keepalive,
            idle_timeout=idle_timeout,
            relay_through=relay_through,
        )

    def create_server(
        self,
        handler: ConnectionHandler,
        *,
        firewall: FirewallCallback | None = None,
        relay_through: RelayThroughOption = None,
    ) -> Server:
        """A server (:mod:`.server`); ``await server.listen(key_pair)`` to be reachable.
        ``handler(connection)`` runs once per incoming connection; ``relay_through`` names a
        blind relay for firewalled clients (:mod:`.relaying`)."""
        return Server(self, handler, firewall, relay_through)

    def find_peer_routes(self, target: bytes) -> Lookup[PeerReply]:
        """Every FIND_PEER reply with a record for ``target`` (each from a routing node)."""
        return Lookup(self, target, Command.FIND_PEER, _peer_reply)

    # -- serving ------------------------------------------------------------------------

    def on_request(self, request: IncomingRequest) -> bool:
        if request.command == Command.PEER_HANDSHAKE:
            self._on_peer_handshake(request)
            return True
        if request.command == Command.PEER_HOLEPUNCH:
            self._on_peer_holepunch(request)
            return True
        from_ = request.from_
        incoming = Request(
            request.command,
            request.target,
            request.token,
            request.value,
            IPv4Address(from_.host, from_.port),
        )
        reply = self.store.handle(incoming, self.id)
        if reply is not None:
            request.send_reply(
                reply.error, reply.value, token=reply.token, closer_nodes=reply.closer_nodes
            )
        return True

    def _on_peer_handshake(self, request: IncomingRequest) -> None:
        if request.value is None or request.target is None:
            return
        try:
            hs = decode_handshake(request.value)
        except CompactDecodeError:
            self.bad_handshakes += 1
            return
        server = self.servers.get(request.target)
        if server is not None:
            server.on_handshake(request, hs)
        else:
            relay_handshake(self, request, hs)

    def _on_peer_holepunch(self, request: IncomingRequest) -> None:
        if request.value is None or request.target is None:
            return
        try:
            hp = decode_holepunch(request.value)
        except CompactDecodeError:
            self.bad_holepunches += 1
            return
        server = self.servers.get(request.target)
        if server is not None and hp.mode == HandshakeMode.FROM_RELAY:
            server.on_holepunch(request, hp)
        elif server is None:
            relay_holepunch(self, request, hp)

    # -- hole punching --------------------------------------------------------------------

    def sample_nodes(self) -> list[Address]:
        """The routing table's nodes, most recently added first (JS ``dht.nodes.latest``
        and back): whom a hole puncher asks about its socket."""
        return [(n.host, n.port) for n in self.recent.newest_first()]

    async def ping_from(self, to: Address, send: Callable[[bytes, Address], None]) -> Reply:
        """One PING sent through ``send`` (a puncher's socket), no resend."""
        return await self.request(to, InternalCommand.PING, internal=True, retries=0, send=send)

    def local_addresses(self) -> list[Address]:
        """Our LAN addresses with the server socket's port (``localAddresses``): the
        bound address if it is one, else the address that routes to the bootstrap."""
        port = self.address[1]
        host = self.address[0]
        if host == "127.0.0.1":
            return [(host, port)]
        if host not in ("0.0.0.0", ""):
            return [(host, port)]
        found: list[Address] = []
        for peer in self.bootstrap_nodes[:1]:
            with (
                contextlib.suppress(OSError),
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s,
            ):
                s.connect((peer[0], peer[1]))
                found.append((s.getsockname()[0], port))
        return found or [("127.0.0.1", port)]

    async def announce_relays(self, topic: bytes, key_pair: KeyPair) -> list[RelayInfo]:
        """:meth:`announce`, returning each node that took it with our address as it saw us
        (the holepunch relays a server offers, ``announcer.js relays``)."""
        return await self._announce(topic, key_pair, ())

    # -- topics -----------------------------------------------------------------------------

    def lookup(self, topic: bytes) -> Lookup[LookupReply]:
        """The records the nodes closest to ``topic`` hold: ``async for reply in ...``."""
        topic = check_topic(topic)
        return Lookup(self, topic, Command.LOOKUP, _lookup_reply)

    async def announce(
        self,
        topic: bytes,
        key_pair: KeyPair,
        relay_addresses: Sequence[tuple[str, int]] = (),
    ) -> list[Address]:
        """Store our record under ``topic`` at the closest nodes; returns those that took it.

        Each node gets its own signature (over its id and token). ``relay_addresses`` are the
        nodes through which we can be reached (a storing node keeps the first three).
        """
        relays = await self._announce(topic, key_pair, relay_addresses)
        return [(r.relay_address.host, r.relay_address.port) for r in relays]

    async def _announce(
        self, topic: bytes, key_pair: KeyPair, relay_addresses: Sequence[tuple[str, int]]
    ) -> list[RelayInfo]:
        topic = check_topic(topic)
        peer = Peer(key_pair.public_key, tuple(IPv4Address(h, p) for h, p in relay_addresses))

        async def commit(reply: Reply, query: Query) -> Reply:
            if reply.token is None or reply.from_.id is None:
                raise DHTError("a closest node sent no token")
            signature = sign_announce(key_pair, topic, reply.from_.id, reply.token, peer)
            return await self.request(
                reply.from_.address,
                Command.ANNOUNCE,
                target=topic,
                value=encode_announce(Announce(peer, None, signature)),
                token=reply.token,
            )

        query = self.query(topic, Command.LOOKUP, commit=commit)
        await query.finished()
        return [
            RelayInfo(IPv4Address(*r.from_.address), r.to)
            for r in query.commits
            if isinstance(r, Reply) and r.error == 0
        ]

    async def announce_server(
        self, target: bytes, key_pair: KeyPair, nodes: Sequence[Address] | None = None
    ) -> Announced:
        """A server's round (``announcer.js``): FIND_PEER to ``target``, then ANNOUNCE to
        the three best replies only; see :mod:`.announcer`."""
        return await announce_to_best(self, target, key_pair, nodes=nodes)

    async def unannounce(self, topic: bytes, key_pair: KeyPair) -> None:
        """Remove our record under ``topic`` from the nodes that hold it (and from us)."""
        topic = check_topic(topic)
        public_key = key_pair.public_key
        self.store.unannounce(topic, public_key)
        peer = Peer(public_key)

        async def send(reply: LookupReply) -> None:
            assert reply.token is not None and reply.node_id is not None
            signature = sign_unannounce(key_pair, topic, reply.node_id, reply.token, peer)
            # as JS: a node that does not answer keeps the record until it ages out
            with contextlib.suppress(DHTError):
                await self.request(
                    reply.from_address,
                    Command.UNANNOUNCE,
                    target=topic,
                    value=encode_announce(Announce(peer, None, signature)),
                    token=reply.token,
                )

        async def nothing(reply: Reply, query: Query) -> None:
            return None

        lookup = Lookup(self, topic, Command.LOOKUP, _lookup_reply, commit=nothing)
        failure: DHTError | None = None
        async with anyio.create_task_group() as tg:
            try:
                async for reply in lookup:
                    if reply.token is None or reply.node_id is None:
                        continue
                    # a reply holds a random 20 records: with 20, ours may be hidden
                    listed = len(reply.peers) >= LOOKUP_RECORDS or any(
                        p.public_key == public_key for p in reply.peers
                    )
                    if listed:
                        tg.start_soon(send, reply)
            except DHTError as exc:
                failure = exc
        if failure is not None:
            raise failure

    async def find_peer(self, public_key: bytes) -> PeerReply | None:
        """The record of the server with ``public_key`` (announced at ``H(public_key)``)."""
        public_key = check_public_key(public_key)
        lookup = Lookup(self, hash32(public_key), Command.FIND_PEER, _peer_reply)
        async for reply in lookup:
            if reply.public_key == public_key:
                lookup.cancel()
                return reply
        return None

    # -- values ---------------------------------------------------------------------------

    async def immutable_put(self, value: bytes) -> bytes:
        """Store ``value`` at the nodes closest to its hash; returns the hash (its name)."""
        value = _check_value(value, MAX_VALUE_SIZE)
        target = hash32(value)

        async def commit(reply: Reply, query: Query) -> Reply:
            return await self.request(
                reply.from_.address,
                Command.IMMUTABLE_PUT,
                target=target,
                value=value,
                token=reply.token,
            )

        query = self.query(target, Command.IMMUTABLE_GET, commit=commit)
        await query.finished()
        if not _accepted(query):
            raise DHTError("no node stored the value")
        return target

    async def immutable_get(self, hash: bytes) -> bytes | None:
        """The value whose BLAKE2b-256 is ``hash``, checked, or None."""
        target = check_public_key(hash, "hash")

        def checked(reply: Reply) -> bytes | None:
            return reply.value if reply.value and hash32(reply.value) == target else None

        values = Lookup(self, target, Command.IMMUTABLE_GET, checked)
        async for value in values:
            values.cancel()
            return value
        return None

    async def mutable_put(self, key_pair: KeyPair, value: bytes, *, seq: int = 0) -> MutableValue:
        """Sign ``value`` with ``seq`` and store it under ``H(public key)``.

        Raises :class:`~p2pswarm.errors.SeqReusedError` or
        :class:`~p2pswarm.errors.SeqTooLowError` when every node that answered refused it.
        """
        value = _check_value(value, MAX_MUTABLE_VALUE_SIZE)
        if not isinstance(seq, int) or not 0 <= seq < 2**53:
            raise ValueError("seq is an integer in 0..2**53-1")
        target = hash32(key_pair.public_key)
        signature = sign_mutable(key_pair, seq, value)
        put = encode_mutable_put_request(
            MutablePutRequest(key_pair.public_key, seq, value, signature)
        )

        async def commit(reply: Reply, query: Query) -> Reply:
            return await self.request(
                reply.from_.address,
                Command.MUTABLE_PUT,
                target=target,
                value=put,
                token=reply.token,
            )

        query = self.query(
            target, Command.MUTABLE_GET, value=encode_mutable_get_request(0), commit=commit
        )
        await query.finished()
        if not _accepted(query):
            _raise_refusal(query)
        return MutableValue(seq, value, signature)

    async def mutable_get(
        self, public_key: bytes, *, seq: int = 0, latest: bool = True
    ) -> MutableValue | None:
        """The newest value signed by ``public_key`` with at least ``seq`` (with ``latest``
        false, the first valid one found), or None."""
        public_key = check_public_key(public_key)
        target = hash32(public_key)
        values = Lookup(
            self,
            target,
            Command.MUTABLE_GET,
            lambda reply: _mutable(reply, public_key, seq),
            value=encode_mutable_get_request(seq),
        )
        best: MutableValue | None = None
        async for found in values:
            if best is not None and found.seq <= best.seq:
                continue
            best = found
            if not latest:
                values.cancel()
        return best


def _mutable(reply: Reply, public_key: bytes, seq: int) -> MutableValue | None:
    if not reply.value:
        return None
    try:
        got = decode_mutable_get_response(reply.value)
    except CompactDecodeError:
        return None
    if got.seq < seq or not verify_mutable(public_key, got.seq, got.value, got.signature):
        return None
    return MutableValue(got.seq, got.value, got.signature, reply.from_.address)


def _accepted(query: Query) -> list[Address]:
    return [r.from_.address for r in query.commits if isinstance(r, Reply) and r.error == 0]


def _raise_refusal(query: Query) -> None:
    errors = [r.error for r in query.commits if isinstance(r, Reply)]
    reused = errors.count(RemoteError.SEQ_REUSED)
    too_low = errors.count(RemoteError.SEQ_TOO_LOW)
    if reused >= too_low and reused:
        raise SeqReusedError("the nodes hold another value with this seq", reused)
    if too_low:
        raise SeqTooLowError("the nodes hold a value with a higher seq", too_low)
    raise MutablePutError("no node stored the value")
