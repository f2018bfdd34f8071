"""A HyperDHT server: reachable by its public key (``hyperdht/lib/server.js``).

``server = dht.create_server(handler)``; ``await server.listen(key_pair)`` announces the
server at ``H(public_key)`` (signed ANNOUNCEs, which the closest nodes keep as a *route*:
the address we announced from) and keeps it announced. A client's PEER_HANDSHAKE reaches us
relayed by one of those nodes (or directly, when it asks us): we read its Noise IK message
(prologue ``NS_PEER_HANDSHAKE``), ask ``firewall(remote_public_key, payload, address)``
(True refuses, as in JS), create a UDX stream on the DHT's socket and answer with our
payload: firewall type, addresses, the stream's id. Then the path (§4.3):

* the client is OPEN, or asked us directly: we connect our stream to its address now;
* we are OPEN: the client connects to us; its first packet (any address that knows the
  stream id: the secret stream authenticates the rest) connects our stream;
* neither, and a blind relay is in play (our ``relay_through`` or the client's): both
  pair through it (:mod:`.relaying`);
* neither: hole punching. Our payload offers a punch session (its id and the relays
  holding our route); :mod:`.server_punch` answers the client's PEER_HOLEPUNCH rounds and
  punches; the client's first UDX packet on one of the puncher's sockets connects the
  stream there. A client reaching a LAN address of ours is adopted the same way as above.

Once the stream is connected, the secret stream starts from the handshake's keys (no
second handshake) and ``handler(connection)`` runs in a task; the connection is closed
when it returns.

State: one entry per distinct first Noise message, kept ``HANDSHAKE_CLEAR_WAIT`` (10 s) so
that a retransmitted request (the client resends, the relay re-forwards) gets the same
answer and the same stream. At most :data:`MAX_HANDSHAKES` entries: a flood of valid
handshakes (anyone who knows our key can make them) evicts the oldest, and with each its
stream (and the connection task on it) unless the client's packets have reached it;
undecryptable messages cost one failed DH and no state at all.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import ipaddress
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Final, TypeAlias

import anyio

from ..connection import Connection
from ..errors import CompactDecodeError, DHTError, HandshakeError, P2PSwarmError
from ..keys import KeyPair
from ..protocol.compact import IPv4Address
from ..protocol.handshake import NoiseHandshake, Pattern
from ..protocol.hyperdht_connect import (
    Firewall,
    Handshake,
    HandshakeMode,
    HolepunchInfo,
    NoisePayload,
    PayloadError,
    RelayInfo,
    UDXInfo,
    decode_noise_payload,
    encode_handshake,
    encode_noise_payload,
)
from ..protocol.hyperdht_holepunch import Holepunch, SecurePayload, holepunch_secret
from ..protocol.secret_stream import SecretStream
from ..protocol.udx import peek_stream_id
from ..transports._handshake import start_connection
from ..transports.udx import UDXStream
from . import relaying
from .connect import connect
from .host import ConnectHost
from .records import NS_PEER_HANDSHAKE, NS_PEER_HOLEPUNCH, hash32
from .rpc import Address, IncomingRequest
from .server_punch import PunchSession, Sessions
from .socket_pool import PooledSocket

__all__ = (
    "ANNOUNCE_PING_INTERVAL",
    "HANDSHAKE_CLEAR_WAIT",
    "MAX_HANDSHAKES",
    "ConnectionHandler",
    "Firewall",
    "FirewallCallback",
    "Server",
)

logger = logging.getLogger(__name__)

#: Seconds a handshake's state (and its unconnected stream) is kept (JS: 10 s).
HANDSHAKE_CLEAR_WAIT: Final = 10.0
#: Handshake states kept at most (a flood evicts the oldest).
MAX_HANDSHAKES: Final = 256
#: Seconds between checks that the nodes holding our route still answer (JS: 3 s).
ANNOUNCE_PING_INTERVAL: Final = 3.0
#: Checks between full re-announces (JS: 100 rounds, about 5 minutes).
REANNOUNCE_ROUNDS: Final = 100

ConnectionHandler: TypeAlias = Callable[[Connection], Awaitable[None]]
#: ``firewall(remote_public_key, payload, client_address)``: True refuses the client.
FirewallCallback: TypeAlias = Callable[[bytes, NoisePayload, Address], bool | Awaitable[bool]]


class _Pending:
    __slots__ = ("created", "punch", "reply", "stream")

    def __init__(self, created: float, reply: bytes | None, stream: UDXStream | None) -> None:
        self.created = created
        self.reply = reply
        self.stream = stream
        self.punch: PunchSession | None = None


class Server:
    """One listening key on a :class:`~.dht.HyperDHT` (see the module docstring)."""

    def __init__(
        self,
        dht: ConnectHost,
        handler: ConnectionHandler,
        firewall: FirewallCallback | None = None,
        relay_through: relaying.RelayThroughOption = None,
    ) -> None:
        self.dht = dht
        self.handler = handler
        self.firewall = firewall
        #: A blind relay for firewalled clients (:mod:`.relaying`).
        self.relay_through = relay_through
        self.key_pair: KeyPair | None = None
        self.target: bytes | None = None
        #: The nodes that took our last announce (they route handshakes to us).
        self.relays: list[Address] = []
        #: The last round's closest nodes, seeding the next round (JS ``_closestNodes``).
        self._closest: list[Address] | None = None
        self.closed = False
        #: Counters for tests and diagnostics.
        self.stats: dict[str, int] = {
            "handshakes": 0,
            "retransmits": 0,
            "bad_noise": 0,
            "bad_payload": 0,
            "refused": 0,
            "evicted": 0,
            "connections": 0,
            "relayed": 0,
            "relay_failed": 0,
        }
        #: The relays with our address as each saw it (offered to punching clients).
        self.relay_infos: list[RelayInfo] = []
        self._pending: OrderedDict[bytes, _Pending] = OrderedDict()
        self.punches = Sessions(dht, lambda: self.relays, self._run)
        self._scopes: set[anyio.CancelScope] = set()
        self._announced = anyio.Event()

    @property
    def public_key(self) -> bytes | None:
        return self.key_pair.public_key if self.key_pair else None

    @property
    def pending_handshakes(self) -> int:
        return len(self._pending)

    # -- life ---------------------------------------------------------------------------

    async def listen(self, key_pair: KeyPair) -> None:
        """Register for ``H(public_key)`` and announce there; returns once announced."""
        if self.key_pair is not None or self.closed:
            raise DHTError("a server listens once")
        target = hash32(key_pair.public_key)
        if target in self.dht.servers:
            raise DHTError("another server listens on this key pair")
        self.key_pair, self.target = key_pair, target
        self.dht.servers[target] = self
        await self._announce()
        self._announced.set()
        self._run(self._keep_announced)

    async def aclose(self, *, unannounce: bool = True) -> None:
        """Stop answering, unannounce (bounded; not when the node itself shuts down),
        close every connection this server made."""
        if self.closed:
            return
        self.closed = True
        if self.target is not None and self.dht.servers.get(self.target) is self:
            del self.dht.servers[self.target]
        for scope in list(self._scopes):
            scope.cancel()
        for pending in self._pending.values():
            _drop(pending)
        self._pending.clear()
        self.punches.close_all()
        if unannounce and self.key_pair and self.target is not None and not self.dht.closed:
            with anyio.move_on_after(3.0), contextlib.suppress(DHTError):
                await self.dht.unannounce(self.target, self.key_pair)

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _run(self, fn: Callable[[], Awaitable[None]]) -> None:
        async def task() -> None:
            with anyio.CancelScope() as scope:
                self._scopes.add(scope)
                try:
                    await fn()
                finally:
                    self._scopes.discard(scope)

        if not self.closed and not self.dht.closed:
            self.dht.start_task(task)

    async def _announce(self) -> None:
        """One round: the three best nodes near our target hold our route (announcer.js)."""
        assert self.key_pair is not None and self.target is not None
        announced = await self.dht.announce_server(self.target, self.key_pair, self._closest)
        self.relays = [relay.relay_address for relay in announced.relays]
        self.relay_infos = [
            RelayInfo(IPv4Address(*relay.relay_address), relay.peer_address)
            for relay in announced.relays
        ]
        self._closest = announced.closest_nodes or None

    async def _keep_announced(self) -> None:
        """Ping the nodes holding our route; re-announce when fewer answer, and in full
        every REANNOUNCE_ROUNDS (``announcer.js``)."""
        assert self.key_pair is not None and self.target is not None
        rounds = 0
        while not self.closed:
            await anyio.sleep(ANNOUNCE_PING_INTERVAL)
            rounds += 1
            alive = 0
            for relay in list(self.relays)[:3]:
                with contextlib.suppress(DHTError):
                    await self.dht.ping(relay, retries=1)
                    alive += 1
            if rounds >= REANNOUNCE_ROUNDS or alive < min(3, len(self.relays)) or not self.relays:
                rounds = 0
                with contextlib.suppress(DHTError):
                    await self._announce()

    # -- handshakes ---------------------------------------------------------------------

    def on_handshake(self, request: IncomingRequest, hs: Handshake) -> None:
        """A PEER_HANDSHAKE for us: FROM_CLIENT (asked directly), FROM_RELAY or
        FROM_SECOND_RELAY (through a node with our route). Never raises."""
        if self.closed or self.key_pair is None or not hs.noise:
            return
        mode = hs.mode
        if mode not in (
            HandshakeMode.FROM_CLIENT,
            HandshakeMode.FROM_RELAY,
            HandshakeMode.FROM_SECOND_RELAY,
        ):
            return
        if mode == HandshakeMode.FROM_SECOND_RELAY and hs.relay_address is None:
            return
        direct = hs.peer_address is None
        peer = hs.peer_address
        client = (peer.host, peer.port) if peer is not None else request.from_.address
        now = self.dht.clock()
        self._expire(now)
        pending = self._pending.get(hs.noise)
        if pending is not None:
            self.stats["retransmits"] += 1
            if pending.reply is not None:
                self._answer(request, hs, pending.reply, pending.punch)
            return
        noise = NoiseHandshake(
            Pattern.IK, initiator=False, key_pair=self.key_pair, prologue=NS_PEER_HANDSHAKE
        )
        try:
            payload = decode_noise_payload(noise.read_message(hs.noise))
        except HandshakeError:
            self.stats["bad_noise"] += 1
            return
        except CompactDecodeError:
            self.stats["bad_payload"] += 1
            return
        assert noise.remote_public_key is not None
        self.stats["handshakes"] += 1
        pending = _Pending(now, None, None)
        self._remember(hs.noise, pending)
        verdict = (
            self.firewall(noise.remote_public_key, payload, client) if self.firewall else False
        )
        if inspect.isawaitable(verdict):
            awaitable = verdict

            async def later() -> None:
                refused = await awaitable
                self._accept(request, hs, noise, payload, pending, client, direct, bool(refused))

            self._run(later)
            return
        self._accept(request, hs, noise, payload, pending, client, direct, bool(verdict))

    def _accept(
        self,
        request: IncomingRequest,
        hs: Handshake,
        noise: NoiseHandshake,
        payload: NoisePayload,
        pending: _Pending,
        client: Address,
        direct: bool,
        refused: bool,
    ) -> None:
        if refused:
            self.stats["refused"] += 1
            return  # silence, as JS: the client's request times out
        if self.closed:
            return
        if payload.version != 1:
            error = PayloadError.VERSION_MISMATCH
        elif payload.udx is None:
            error = PayloadError.ABORTED
        else:
            error = PayloadError.NONE
        dht = self.dht
        ours = dht.remote_address()
        socket = dht.stream_socket(request.client if direct else None)
        stream = socket.create_stream() if error == PayloadError.NONE else None
        holepunch = None
        punch = None
        if ours is None:
            if stream is not None and payload.firewall != Firewall.OPEN and not direct:
                punch = self.punches.open(payload.firewall) if self.relay_infos else None
            relays = tuple(self.relay_infos) if punch is not None else ()
            holepunch = HolepunchInfo(punch.id if punch is not None else 0, relays)
        relay_offer = relaying.offer(self.relay_through) if stream is not None else None
        addresses = [IPv4Address(*ours)] if ours is not None else []
        addresses += [IPv4Address(*a) for a in dht.local_addresses() if _is_private(a[0])]
        reply_payload = NoisePayload(
            error=error,
            firewall=Firewall.OPEN if ours is not None else Firewall.UNKNOWN,
            holepunch=holepunch,
            addresses4=tuple(addresses),
            udx=UDXInfo(stream.id if stream is not None else 0),
            secret_stream=1,
            relay_through=relay_offer,
        )
        try:
            message = noise.write_message(encode_noise_payload(reply_payload))
        except HandshakeError:
            if stream is not None:
                stream.destroy()
            if punch is not None:
                punch.puncher.destroy()
            return
        pending.reply = message
        pending.stream = stream
        pending.punch = punch
        self._answer(request, hs, message, punch)
        if stream is None or payload.udx is None:
            return
        assert noise.remote_public_key is not None
        machine = SecretStream.from_handshake(
            initiator=False,
            key_pair=self.key_pair,  # type: ignore[arg-type]
            remote_public_key=noise.remote_public_key,
            handshake_hash=noise.handshake_hash,
            tx=noise.tx,
            rx=noise.rx,
        )
        remote_id = payload.udx.id
        if payload.firewall == Firewall.OPEN or direct:
            stream.connect(remote_id, *client)
            self._serve(stream, machine, client)
            return

        relay = relaying.plan(relay_offer, payload.relay_through, server=True)
        if relay is not None and ours is None:
            if punch is not None:  # the relay replaces the punch (as a relayed JS server)
                punch.puncher.destroy()
                self.punches.close(punch)
            self._relay(stream, machine, relay)
            return

        # The client connects to us (we are OPEN, or it sees no way to punch us): its first
        # packet names its path, as the JS server's raw-stream firewall hook does.
        def done_punching() -> None:
            if punch is not None:
                punch.puncher.on_abort = None
                punch.puncher.destroy()
                self.punches.close(punch)

        def adopt(s: UDXStream, address: Address) -> bool:
            if not 0 < address[1] < 65536:
                return True
            s.connect(remote_id, *address)
            done_punching()
            self._serve(s, machine, address)
            return False

        stream.firewall = adopt
        if punch is None:
            return
        punch.secure = SecurePayload(holepunch_secret(noise.handshake_hash, NS_PEER_HOLEPUNCH))

        def punched(ref: PooledSocket, data: bytes, address: Address) -> None:
            # The client's first UDX packet on a puncher socket: the punched path.
            if stream.connected or stream.closed or ref.socket is None:
                return
            if peek_stream_id(data) != stream.id or not 0 < address[1] < 65536:
                return
            stream.connect(remote_id, *address, socket=ref.socket)
            ref.keep_for = stream
            done_punching()
            self._serve(stream, machine, address)
            ref.socket.deliver(data, address)

        def aborted() -> None:
            if not stream.connected:
                stream.destroy()

        punch.puncher.on_udx = punched
        punch.puncher.on_abort = aborted

    def on_holepunch(self, request: IncomingRequest, hp: Holepunch) -> None:
        """A PEER_HOLEPUNCH round relayed to us (:mod:`.server_punch`). Never raises."""
        if not self.closed:
            self.punches.on_holepunch(request, hp)

    def _relay(self, stream: UDXStream, machine: SecretStream, relay: relaying.RelayPlan) -> None:
        """Pair through the blind relay, then serve the relayed stream."""

        async def run() -> None:
            try:
                address = await relaying.pair_through(
                    self.dht, functools.partial(connect, self.dht), relay, stream
                )
            except P2PSwarmError:
                self.stats["relay_failed"] += 1
                return
            self.stats["relayed"] += 1
            self._serve(stream, machine, address)

        self._run(run)

    def _serve(self, stream: UDXStream, machine: SecretStream, address: Address) -> None:
        self.stats["connections"] += 1

        async def run() -> None:
            try:
                connection = await start_connection(stream, machine, remote_address=address)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, DHTError, OSError):
                return
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(connection.run_keepalive)
                    await self.handler(connection)
                    tg.cancel_scope.cancel()
            except Exception:
                logger.exception("a connection handler failed")
            finally:
                with anyio.CancelScope(shield=True):
                    await connection.aclose()

        self._run(run)

    def _answer(
        self,
        request: IncomingRequest,
        hs: Handshake,
        message: bytes,
        punch: PunchSession | None = None,
    ) -> None:
        """Send the reply; with a punch session, from its puncher's socket once that is
        open (as JS's ``replyFromPuncher``): the relay then names that socket's address to
        the client, which opens its NAT towards it and gets the server's fast-open probe."""
        if punch is not None and hs.mode != HandshakeMode.FROM_CLIENT:
            session = punch

            async def later() -> None:
                await session.ready.wait()
                holder = session.puncher._holder
                send = holder.send if holder is not None and not session.puncher.destroyed else None
                self._send_answer(request, hs, message, send)

            self._run(later)
            return
        self._send_answer(request, hs, message, None)

    def _send_answer(
        self,
        request: IncomingRequest,
        hs: Handshake,
        message: bytes,
        send: Callable[[bytes, Address], None] | None,
    ) -> None:
        if hs.mode == HandshakeMode.FROM_CLIENT:
            value = encode_handshake(Handshake(HandshakeMode.REPLY, message))
            request.send_reply(0, value, token=False, closer_nodes=False)
        elif hs.mode == HandshakeMode.FROM_RELAY:
            value = encode_handshake(Handshake(HandshakeMode.FROM_SERVER, message, hs.peer_address))
            request.relay(value, request.from_.address, send=send)
        elif hs.relay_address is not None:
            value = encode_handshake(Handshake(HandshakeMode.FROM_SERVER, message, hs.peer_address))
            request.relay(value, (hs.relay_address.host, hs.relay_address.port), send=send)

    def _remember(self, key: bytes, pending: _Pending) -> None:
        while len(self._pending) >= MAX_HANDSHAKES:
            _, old = self._pending.popitem(last=False)
            self.stats["evicted"] += 1
            _drop(old)
        self._pending[key] = pending

    def _expire(self, now: float) -> None:
        while self._pending:
            key, oldest = next(iter(self._pending.items()))
            if now - oldest.created < HANDSHAKE_CLEAR_WAIT:
                return
            del self._pending[key]
            _drop(oldest)


def _is_private(host: str) -> bool:
    try:
        return ipaddress.IPv4Address(host).is_private and not host.startswith("127.")
    except ValueError:
        return False


def _drop(pending: _Pending) -> None:
    """Forget a handshake: its stream goes too unless the client has reached it (a
    connection whose peer never sent a packet is a flood's, or a lost one)."""
    stream = pending.stream
    punch = pending.punch
    if punch is not None and punch.puncher.punching:
        return  # a punch in progress ends the stream itself when it gives up
    if punch is not None:
        punch.puncher.destroy()
    if stream is None or stream.closed:
        return
    if not stream.connected or stream.machine.stats.packets_received == 0:
        stream.destroy()
