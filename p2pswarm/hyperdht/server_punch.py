"""The server's side of hole punching (``hyperdht/lib/server.js _onpeerholepunch``).

A firewalled server that accepts a firewalled client opens a :class:`PunchSession`: a
session id (sent in its noise payload's ``holepunch`` field, with the relays holding its
route), the handshake's :class:`~p2pswarm.protocol.hyperdht_holepunch.SecurePayload`, and a
:class:`~.holepuncher.Holepuncher` (non-initiator). Each PEER_HOLEPUNCH round the client
sends (relayed as FROM_RELAY) is opened, checked, and answered, from the puncher's socket so
the relay names that socket's address to the client:

* a round for no session, without the client's address, or that does not open under the
  secret: dropped silently (forged, replayed into another session, garbage); it costs one
  failed secretbox open and no state;
* an ``error`` round (the client gives up) or a side that cannot punch: answered ABORTED;
* a round whose sender says it is punching: we punch too (or TRY_LATER when this node
  already runs a random punch: we have no relay to offer instead).

Bounds: :data:`MAX_SESSIONS` sessions (no holepunch is offered past it), at most
:data:`MAX_ROUNDS_IN_FLIGHT` rounds of one session handled at once (the rest dropped: the
client resends), and a session whose punch never starts ends after
:data:`PREPUNCH_TIMEOUT`. Address tokens are echoed only through one of our own relays.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

import anyio

from ..protocol.compact import IPv4Address
from ..protocol.hyperdht_connect import Firewall, HandshakeMode, PayloadError
from ..protocol.hyperdht_holepunch import (
    Holepunch,
    HolepunchPayload,
    SecurePayload,
    encode_holepunch,
)
from .holepuncher import Holepuncher, PunchHost
from .rpc import Address, IncomingRequest

__all__ = ("MAX_ROUNDS_IN_FLIGHT", "MAX_SESSIONS", "PREPUNCH_TIMEOUT", "PunchSession", "Sessions")

MAX_SESSIONS: Final = 64
MAX_ROUNDS_IN_FLIGHT: Final = 2
#: Seconds a session waits for the client to start punching (HANDSHAKE_INITIAL_TIMEOUT).
PREPUNCH_TIMEOUT: Final = 10.0


class PunchSession:
    __slots__ = ("busy", "id", "prepunch", "puncher", "ready", "round", "secure", "stats")

    def __init__(self, session_id: int, puncher: Holepuncher) -> None:
        self.id = session_id
        #: Set once the handshake is written (the secret comes from its final hash).
        self.secure: SecurePayload | None = None
        self.puncher = puncher
        self.round = 0
        self.busy = 0
        self.ready = anyio.Event()
        self.prepunch: anyio.CancelScope | None = None
        self.stats: dict[str, int] = {}


class Sessions:
    """A server's punch sessions by id (the lowest free id, as JS's ``_holepunches``)."""

    def __init__(
        self,
        host: PunchHost,
        relays: Callable[[], list[Address]],
        run: Callable[[Callable[[], Awaitable[None]]], None],
    ) -> None:
        self.host = host
        self._relays = relays
        self._run = run
        self.sessions: dict[int, PunchSession] = {}
        self.stats = {"rounds": 0, "unknown": 0, "forged": 0, "busy": 0, "aborted": 0}

    def open(self, remote_firewall: int) -> PunchSession | None:
        """A new session, or None when :data:`MAX_SESSIONS` are open."""
        if len(self.sessions) >= MAX_SESSIONS:
            return None
        sid = next(i for i in range(MAX_SESSIONS + 1) if i not in self.sessions)
        puncher = Holepuncher(self.host, False, remote_firewall)
        session = PunchSession(sid, puncher)
        self.sessions[sid] = session
        previous = puncher.on_abort

        def aborted() -> None:
            if previous is not None:
                previous()
            self.close(session)

        puncher.on_abort = aborted

        async def start() -> None:
            try:
                await puncher.start()
            except Exception:
                puncher.destroy()
                self.close(session)
            finally:
                session.ready.set()
            with anyio.CancelScope() as scope:
                session.prepunch = scope
                await anyio.sleep(PREPUNCH_TIMEOUT)
                if not puncher.punching:
                    puncher.destroy()

        self._run(start)
        return session

    def close(self, session: PunchSession) -> None:
        if self.sessions.get(session.id) is session:
            del self.sessions[session.id]
        if session.prepunch is not None:
            session.prepunch.cancel()

    def close_all(self) -> None:
        for session in list(self.sessions.values()):
            session.puncher.on_abort = None
            session.puncher.destroy()
            self.close(session)

    def on_holepunch(self, request: IncomingRequest, hp: Holepunch) -> None:
        """A FROM_RELAY round. Never raises; the answer (if any) is sent later."""
        session = self.sessions.get(hp.id)
        if session is None or hp.peer_address is None or session.secure is None:
            self.stats["unknown"] += 1
            return
        remote = session.secure.decrypt(hp.payload)
        if remote is None:
            self.stats["forged"] += 1
            return
        if session.busy >= MAX_ROUNDS_IN_FLIGHT:
            self.stats["busy"] += 1
            return
        session.busy += 1
        self.stats["rounds"] += 1
        peer = (hp.peer_address.host, hp.peer_address.port)

        async def handle() -> None:
            try:
                await self._round(request, session, remote, peer)
            finally:
                session.busy -= 1

        self._run(handle)

    async def _round(
        self,
        request: IncomingRequest,
        session: PunchSession,
        remote: HolepunchPayload,
        peer: Address,
    ) -> None:
        await session.ready.wait()
        p = session.puncher
        assert session.secure is not None
        if p.destroyed or p._holder is None:
            self._abort(request, session, peer)
            return
        if remote.error != PayloadError.NONE:
            session.round = max(session.round, remote.round)
            self._abort(request, session, peer)
            return
        token = session.secure.token(peer[0])
        from_relay = request.from_.address in self._relays()
        echoed = from_relay and remote.remote_token == token
        if remote.round >= session.round:
            session.round = remote.round
            addresses = tuple((a.host, a.port) for a in remote.addresses or ())
            p.update_remote(
                remote.punching, remote.firewall, addresses, peer[0] if echoed else None
            )
        stable = await p.analyze(False)
        if p.destroyed:
            return
        if not p.remote_punching and not stable:
            stable = await p.analyze(True)
            if p.destroyed:
                return
            if not stable:
                self._abort(request, session, peer)
                return
        ours = p.nat.addresses or []
        if (
            p.nat.firewall in (Firewall.OPEN, Firewall.CONSISTENT)
            and remote.remote_address is not None
            and (remote.remote_address.host, remote.remote_address.port) in ours
        ):
            p.ping(peer)  # fast mode: the client opened a session to us already
        if p.remote_punching:
            if session.prepunch is not None:
                session.prepunch.cancel()
            random_side = p.remote_firewall >= Firewall.RANDOM or p.nat.firewall >= Firewall.RANDOM
            if random_side and self.host.punch_budget.exhausted(self.host.clock()):
                self._abort(request, session, peer, PayloadError.TRY_LATER)
                return
            if not await p.punch():
                if not p.destroyed:
                    self._abort(request, session, peer)
                return
            if p.destroyed:
                return
        if p.nat.firewall != Firewall.UNKNOWN:
            p.nat.freeze()
        reply = HolepunchPayload(
            error=PayloadError.NONE,
            firewall=p.nat.firewall,
            round=session.round,
            connected=p.connected,
            punching=p.punching,
            addresses=tuple(IPv4Address(h, port) for h, port in p.nat.addresses or ())
            if p.nat.addresses is not None
            else None,
            token=token if from_relay else None,
            remote_token=remote.token,
        )
        self._send(request, session, peer, reply, p.socket.send)

    def _abort(
        self,
        request: IncomingRequest,
        session: PunchSession,
        peer: Address,
        error: int = PayloadError.ABORTED,
    ) -> None:
        self.stats["aborted"] += 1
        reply = HolepunchPayload(error=error, round=session.round)
        session.puncher.destroy()
        self._send(request, session, peer, reply, None)

    def _send(
        self,
        request: IncomingRequest,
        session: PunchSession,
        peer: Address,
        payload: HolepunchPayload,
        send: Callable[[bytes, Address], None] | None,
    ) -> None:
        assert session.secure is not None
        sealed = session.secure.encrypt(payload)
        value = encode_holepunch(
            Holepunch(HandshakeMode.FROM_SERVER, 0, sealed, IPv4Address(*peer))
        )
        request.relay(value, request.from_.address, send=send)
