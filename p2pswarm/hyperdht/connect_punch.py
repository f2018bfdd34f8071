"""The client's side of hole punching (``hyperdht/lib/connect.js holepunch``).

Runs after a relayed handshake when both sides are firewalled and the server offered a
punch session (``holepunch.relays`` in its payload). In order, as JS:

1. LAN shortcut: if the relay saw us and the server at the same public host, PING the
   server's private address (the one sharing most octets with ours) from our DHT socket;
   an answer connects the stream there. It races the punch.
2. Probe round (``probeRound``): through the server's relay (the one our handshake went
   through if it is one), tell the server our NAT so far; its answer has its NAT, its
   address token; our socket's NAT is sampled meanwhile. Unknown or unstable sides get
   one more round; two random NATs stop here (HOLEPUNCH_DOUBLE_RANDOMIZED_NATS).
3. Punch round (``roundPunch``): say we are punching, echo its token (our proof that the
   address is its); when its answer says it punches too, run our strategy.
4. The first probe that reaches one of our puncher sockets is the path; the UDX stream
   moves onto that socket and connects to where the probe came from.

Errors are :class:`HolepunchError` with JS's code. A blind relay would be tried where
:func:`~.connect.relay_fallback` is called.
"""

from __future__ import annotations

import contextlib
from typing import Final

import anyio

from ..errors import DHTError, HolepunchUnavailableError
from ..protocol.compact import IPv4Address
from ..protocol.hyperdht_connect import Firewall, NoisePayload, PayloadError, RelayInfo
from ..protocol.hyperdht_holepunch import HolepunchPayload, SecurePayload
from ..transports.udx import UDXStream
from .holepuncher import Holepuncher
from .host import ConnectHost
from .punch_policy import match_address
from .router import peer_holepunch
from .rpc import Address
from .socket_pool import PooledSocket

__all__ = ("PUNCH_TIMEOUT", "HolepunchError", "client_holepunch")

#: Seconds a punch may take in all: JS's random probing stops after 1750 x 20 ms.
PUNCH_TIMEOUT: Final = 45.0


class HolepunchError(HolepunchUnavailableError):
    """A hole punch failed; ``code`` is hyperdht's (HOLEPUNCH_ABORTED, ...)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


def _private(host: str) -> bool:
    parts = host.split(".")
    if len(parts) != 4:
        return False
    a, b = int(parts[0]), int(parts[1])
    return a == 10 or (a == 172 and 16 <= b < 32) or (a == 192 and b == 168)


class _Client:
    def __init__(
        self,
        dht: ConnectHost,
        target: bytes,
        remote: NoisePayload,
        secure: SecurePayload,
        puncher: Holepuncher,
    ) -> None:
        self.dht = dht
        self.target = target
        self.remote = remote
        self.secure = secure
        self.puncher = puncher
        self.round = 0
        assert remote.holepunch is not None
        self.session = remote.holepunch.id

    async def update(self, peer: Address, relay: Address, payload: HolepunchPayload) -> tuple:  # type: ignore[type-arg]
        p = self.puncher
        reply = await peer_holepunch(
            self.dht,
            self.target,
            self.session,
            self.secure.encrypt(payload),
            peer,
            relay,
            p.socket.send,
        )
        theirs = self.secure.decrypt(reply.payload)
        if theirs is None:
            raise HolepunchError("HOLEPUNCH_INVALID", "the server's round does not open")
        if theirs.error != PayloadError.NONE:
            raise HolepunchError("REMOTE_ABORTED", f"the server aborted (error {theirs.error})")
        echoed = bool(
            theirs.remote_token and payload.token and theirs.remote_token == payload.token
        )
        addresses = tuple((a.host, a.port) for a in theirs.addresses or ())
        p.update_remote(theirs.punching, theirs.firewall, addresses, peer[0] if echoed else None)
        return reply, theirs

    def _ours(self) -> tuple[IPv4Address, ...] | None:
        a = self.puncher.nat.addresses
        return tuple(IPv4Address(h, port) for h, port in a) if a is not None else None

    def _next_round(self) -> int:
        self.round += 1
        return self.round - 1

    async def probe_round(
        self, server: Address | None, relay: RelayInfo, retry: bool
    ) -> tuple[bytes | None, Address]:
        p = self.puncher
        if server is not None:
            p.open_session(server)
        payload = HolepunchPayload(
            firewall=p.nat.firewall,
            round=self._next_round(),
            addresses=self._ours(),
            remote_address=IPv4Address(*server) if server is not None else None,
        )
        peer = (relay.peer_address.host, relay.peer_address.port)
        via = (relay.relay_address.host, relay.relay_address.port)
        reply, theirs = await self.update(peer, via, payload)
        p.nat.add(reply.to, reply.from_address)
        if p.remote_firewall == Firewall.UNKNOWN:
            await anyio.sleep(1.0)
        stable = await p.analyze(False)
        if not stable:
            stable = await p.analyze(True)
            if stable:
                return await self.probe_round(server, relay, False)
        if (p.remote_firewall == Firewall.UNKNOWN or theirs.token is None) and retry:
            return await self.probe_round(server, relay, False)
        if p.remote_firewall == Firewall.UNKNOWN or p.nat.firewall == Firewall.UNKNOWN:
            await self.abort(relay)
            raise HolepunchError("HOLEPUNCH_PROBE_TIMEOUT")
        if p.remote_firewall >= Firewall.RANDOM and p.nat.firewall >= Firewall.RANDOM:
            await self.abort(relay)
            raise HolepunchError("HOLEPUNCH_DOUBLE_RANDOMIZED_NATS")
        return theirs.token, reply.peer_address

    async def round_punch(self, server: Address, token: bytes | None, relay: Address) -> None:
        p = self.puncher
        p.nat.freeze()
        budget = self.dht.punch_budget
        random_side = p.remote_firewall >= Firewall.RANDOM or p.nat.firewall >= Firewall.RANDOM
        if random_side and budget.exhausted(self.dht.clock()):
            raise HolepunchError("HOLEPUNCH_ABORTED", "a random punch runs already")
        if random_side:
            budget.running += 1
        try:
            await self.update(
                server,
                relay,
                HolepunchPayload(
                    firewall=p.nat.firewall,
                    round=self._next_round(),
                    punching=True,
                    addresses=self._ours(),
                    token=self.secure.token(server[0]),
                    remote_token=token,
                ),
            )
        finally:
            if random_side:
                budget.running -= 1
        if not p.remote_punching:
            raise HolepunchError("REMOTE_NOT_HOLEPUNCHING")
        if not await p.punch():
            raise HolepunchError("REMOTE_NOT_HOLEPUNCHABLE")

    async def abort(self, relay: RelayInfo) -> None:
        peer = (relay.peer_address.host, relay.peer_address.port)
        via = (relay.relay_address.host, relay.relay_address.port)
        payload = HolepunchPayload(error=PayloadError.ABORTED, round=self._next_round())
        with anyio.move_on_after(5.0), contextlib.suppress(DHTError, HolepunchError):
            await self.update(peer, via, payload)


def _pick_relay(relays: tuple[RelayInfo, ...], ours: Address) -> RelayInfo:
    for r in relays:
        if (r.relay_address.host, r.relay_address.port) == ours:
            return r
    return relays[0]


async def client_holepunch(
    dht: ConnectHost,
    target: bytes,
    stream: UDXStream,
    remote_id: int,
    remote: NoisePayload,
    secure: SecurePayload,
    relay_address: Address,
    server_address: Address,
    client_address: Address,
) -> Address:
    """Punch to the server (module docstring); the address the stream now goes to."""
    assert remote.holepunch is not None and remote.holepunch.relays
    found: list[Address] = []
    failure: list[BaseException] = []
    done = anyio.Event()

    def connected(ref: PooledSocket | None, address: Address) -> None:
        if found or stream.closed or ref is None or ref.socket is None:
            return
        if not stream.connected:
            stream.connect(remote_id, *address, socket=ref.socket)
        ref.keep_for = stream
        ref.release()
        found.append(address)
        done.set()

    def adopt(s: UDXStream, address: Address) -> bool:
        # The server reached our DHT socket itself (an open or cone NAT of ours).
        if found or not 0 < address[1] < 65536:
            return True
        s.connect(remote_id, *address)
        found.append(address)
        done.set()
        return False

    stream.firewall = adopt
    puncher = Holepuncher(dht, True, remote.firewall)
    puncher.on_connect = connected
    puncher.on_abort = done.set

    async def lan() -> None:
        private = [(a.host, a.port) for a in remote.addresses4 if _private(a.host)]
        if not private or client_address[0] != server_address[0]:
            return
        address = match_address(dht.local_addresses(), private) or private[0]
        try:
            await dht.ping(address, retries=1)
        except DHTError:
            return
        if not found and not stream.connected:
            stream.connect(remote_id, *address)
            found.append(address)
            done.set()

    async def rounds() -> None:
        try:
            await puncher.start()
            client_relay = _pick_relay(remote.holepunch.relays, relay_address)  # type: ignore[union-attr]
            c = _Client(dht, target, remote, secure, puncher)
            token, peer = await c.probe_round(server_address, client_relay, True)
            server = server_address
            same_relay = (
                client_relay.relay_address.host,
                client_relay.relay_address.port,
            ) == relay_address
            if same_relay and peer != server:
                server = peer
                puncher.open_session(server)
            await c.round_punch(server, token, relay_address)
        except (HolepunchError, DHTError) as exc:
            failure.append(exc)
            puncher.destroy()
            done.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lan)
            tg.start_soon(rounds)
            with anyio.move_on_after(PUNCH_TIMEOUT):
                await done.wait()
            tg.cancel_scope.cancel()
    finally:
        if not found:
            puncher.on_abort = None
        puncher.destroy()
    if found:
        return found[0]
    if failure:
        exc = failure[0]
        if isinstance(exc, HolepunchError):
            raise exc
        raise HolepunchError("HOLEPUNCH_ABORTED", str(exc)) from exc
    raise HolepunchError("HOLEPUNCH_ABORTED", "no probe got through")
