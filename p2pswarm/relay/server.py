"""The relay side of JS ``blind-relay`` 1.6.1: pair two peers that present one token.

Any peer can relay. For each connection it serves, :meth:`BlindRelayServer.accept` opens
the ``blind-relay`` channel (id: the client's public key, as JS callers pass
``socket.remotePublicKey``). A ``pair`` names a token, a side (initiator or not) and the
client's own UDX stream id. When both sides of a token have asked, the relay makes one UDX
stream per side on its socket, links them with ``relay_to`` (packets are forwarded
verbatim, never decrypted: the two ends run their secret stream through it) and answers
each side with ``pair`` carrying the relay stream's id. Each relay stream adopts the
address of the first packet that reaches it (JS ``_onfirewall``), so clients need not
say where they are.

What JS leaves unbounded is bounded here, because a relay serves strangers: pending
pairings (globally and per connection) and live links per connection have caps, and a
pending pairing expires after ``pending_timeout`` seconds (the JS client gives up after
15 s anyway). A request beyond a cap is ignored, as JS ignores a duplicate side: the
asker's pairing times out, and nobody else's is touched. A malformed message is a typed
:class:`~p2pswarm.errors.RelayMessageError` from the codec, and the Mux drops that
connection alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import anyio

from ..connection import Connection
from ..mux import Channel, Mux
from ..protocol.blind_relay import PROTOCOL, Pair, Unpair
from ..transports.udx import Address, UDXSocket, UDXStream
from .codecs import PAIR_CODEC, UNPAIR_CODEC

__all__ = ("DEFAULT_PENDING_TIMEOUT", "BlindRelayServer", "RelayLimits", "RelayStats")

DEFAULT_PENDING_TIMEOUT: Final = 15.0


@dataclass(frozen=True, slots=True)
class RelayLimits:
    """Caps on what strangers can make a relay hold."""

    max_pending: int = 1024
    max_pending_per_session: int = 32
    max_links_per_session: int = 64
    pending_timeout: float = DEFAULT_PENDING_TIMEOUT


@dataclass(slots=True)
class RelayStats:
    """Counters in the spirit of JS ``server.stats``."""

    sessions: int = 0
    requested: int = 0
    matched: int = 0
    cancelled: int = 0
    expired: int = 0
    refused: int = 0
    streams_opened: int = 0
    streams_closed: int = 0


class _Link:
    """One side of a matched pair: the relay's stream towards that client."""

    def __init__(self, session: _Session, is_initiator: bool, remote_id: int) -> None:
        self.session = session
        self.is_initiator = is_initiator
        self.remote_id = remote_id
        self.stream: UDXStream | None = None
        self.other: _Link | None = None

    def _firewall(self, stream: UDXStream, address: Address) -> bool:
        stream.connect(self.remote_id, *address)
        return False

    def destroy(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.destroy()


@dataclass(slots=True)
class _Pending:
    token: bytes
    deadline: float
    links: list[_Link | None] = field(default_factory=lambda: [None, None])


class _Session:
    """The relay's end of one client connection's ``blind-relay`` channel."""

    def __init__(
        self, server: BlindRelayServer, mux: Mux, id: bytes | None, socket: UDXSocket
    ) -> None:
        self.server = server
        self.mux = mux
        self.socket = socket
        self.pending: set[bytes] = set()
        self.links: dict[bytes, _Link] = {}
        channel = mux.create_channel(
            PROTOCOL,
            id,
            messages=[(PAIR_CODEC, self._on_pair), (UNPAIR_CODEC, self._on_unpair)],
            on_close=self._on_close,
        )
        if channel is None:
            raise ValueError("this connection has a blind-relay channel already")
        self.channel: Channel = channel
        channel.open()

    def _on_pair(self, message: Pair, channel: Channel) -> None:
        self.server._pair(self, message)

    def _on_unpair(self, message: Unpair, channel: Channel) -> None:
        self.server._unpair(self, message.token)

    def _on_close(self, remote: bool, channel: Channel) -> None:
        self.server._close_session(self)


class BlindRelayServer:
    """Pairs clients' UDX streams (see the module docstring). Each side's relay stream goes
    on the socket given to :meth:`accept` for its connection, else on ``socket``: the one
    its client sends to.

    ``clock`` is injected so that expiry is testable; it defaults to anyio's.
    """

    def __init__(
        self,
        socket: UDXSocket | None = None,
        *,
        limits: RelayLimits | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.socket = socket
        self.limits = limits if limits is not None else RelayLimits()
        self._clock = clock if clock is not None else anyio.current_time
        self._pending: dict[bytes, _Pending] = {}
        self._sessions: set[_Session] = set()
        self.stats = RelayStats()
        self._changed = anyio.Event()

    async def wait_until(self, predicate: Callable[[BlindRelayServer], bool]) -> None:
        """Return once ``predicate(self)`` holds; re-checked after every change of state
        (for tests and monitoring: no polling)."""
        while not predicate(self):
            await self._changed.wait()

    def _touch(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    @property
    def pending(self) -> int:
        """Pairings waiting for their second side."""
        return len(self._pending)

    @property
    def links(self) -> int:
        """Relay streams alive (two per matched pair)."""
        return sum(len(s.links) for s in self._sessions)

    def accept(
        self,
        connection: Connection | Mux,
        *,
        id: bytes | None = None,
        socket: UDXSocket | None = None,
    ) -> Channel:
        """Serve ``blind-relay`` on a connection (its Mux must be run by the caller). ``id``
        defaults to the client's public key, the channel id JS clients use."""
        mux = connection if isinstance(connection, Mux) else Mux.of(connection)
        if id is None:
            id = mux.connection.remote_public_key
        socket = socket if socket is not None else self.socket
        if socket is None:
            raise ValueError("no UDX socket for this connection's relay streams")
        session = _Session(self, mux, id, socket)
        self._sessions.add(session)
        self.stats.sessions += 1
        return session.channel

    def close(self) -> None:
        """Close every session's channel and destroy every relay stream."""
        for session in list(self._sessions):
            session.channel.close()
            self._close_session(session)
        self._pending.clear()

    def expire(self) -> int:
        """Drop pending pairings past their deadline; returns how many."""
        now = self._clock()
        stale = [t for t, p in self._pending.items() if p.deadline <= now]
        for token in stale:
            self._drop_pending(token)
        self.stats.expired += len(stale)
        if stale:
            self._touch()
        return len(stale)

    # -- from the sessions ------------------------------------------------------------------

    def _pair(self, session: _Session, message: Pair) -> None:
        self._touch()
        self.expire()
        token = message.token
        pending = self._pending.get(token)
        side = int(message.is_initiator)
        limits = self.limits
        if token in session.links:
            self.stats.refused += 1  # this connection relays that token already
            return
        if pending is None:
            if (
                len(self._pending) >= limits.max_pending
                or len(session.pending) >= limits.max_pending_per_session
                or len(session.links) >= limits.max_links_per_session
            ):
                self.stats.refused += 1
                return
            pending = _Pending(token, self._clock() + limits.pending_timeout)
            self._pending[token] = pending
        elif pending.links[side] is not None:
            return  # that side asked already (JS ignores it too)
        elif any(link is not None and link.session is session for link in pending.links):
            self.stats.refused += 1  # both sides on one connection: nothing to relay
            return
        elif len(session.links) >= limits.max_links_per_session:
            self.stats.refused += 1
            return
        self.stats.requested += 1
        session.pending.add(token)
        pending.links[side] = _Link(session, message.is_initiator, message.id)
        first, second = pending.links
        if first is None or second is None:
            return
        del self._pending[token]
        self.stats.matched += 1
        for link in (first, second):
            link.session.pending.discard(token)
            link.stream = link.session.socket.create_stream(firewall=link._firewall)
        first.other, second.other = second, first
        for link in (first, second):
            assert link.stream is not None and link.other is not None
            assert link.other.stream is not None
            link.stream.relay_to(link.other.stream)
            link.session.links[token] = link
            self.stats.streams_opened += 1
            link.session.mux.start_soon(self._watch, link, token)
        for link in (first, second):
            assert link.stream is not None
            reply = Pair(link.is_initiator, token, link.stream.id, 0)
            link.session.channel.messages[0].send_nowait(reply)

    def _unpair(self, session: _Session, token: bytes) -> None:
        self._touch()
        if token in self._pending:
            self._drop_pending(token)
            self.stats.cancelled += 1
            return
        link = session.links.get(token)
        if link is not None:
            self.stats.cancelled += 1
            other = link.other
            link.destroy()
            if other is not None:
                other.destroy()

    def _close_session(self, session: _Session) -> None:
        self._touch()
        if session not in self._sessions:
            return
        self._sessions.discard(session)
        for token in list(session.pending):
            pending = self._pending.get(token)
            if pending is None:
                continue
            pending.links = [
                link if link is not None and link.session is not session else None
                for link in pending.links
            ]
            if pending.links == [None, None]:
                del self._pending[token]
            self.stats.cancelled += 1
        session.pending.clear()
        for link in list(session.links.values()):
            link.destroy()
        session.links.clear()

    def _drop_pending(self, token: bytes) -> None:
        pending = self._pending.pop(token, None)
        if pending is None:
            return
        for link in pending.links:
            if link is not None:
                link.session.pending.discard(token)

    async def _watch(self, link: _Link, token: bytes) -> None:
        """Forget a link once its stream is over (either end's DESTROY closes both)."""
        stream = link.stream
        if stream is not None:
            await stream.wait_closed()
        if link.session.links.get(token) is link:
            del link.session.links[token]
        link.stream = None
        self.stats.streams_closed += 1
        self._touch()
