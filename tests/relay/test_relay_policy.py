"""The relay's pairing bookkeeping under arbitrary sequences of pair, unpair, expiry and
hang-ups from several connections (Hypothesis): the caps always hold, every pending token
is known to exactly the sessions that asked, a matched pair is answered once on each side
with the stream made for it, and nothing is left once every connection is gone.

The sessions here are stand-ins for the Mux side (a reply list, a stream factory); the
bookkeeping under test is the server's own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings, strategies as st

from p2pswarm.protocol.blind_relay import Pair
from p2pswarm.relay import BlindRelayServer, RelayLimits
from p2pswarm.relay.server import _Session

TOKENS = [bytes([i]) * 32 for i in range(6)]
LIMITS = RelayLimits(max_pending=5, max_pending_per_session=3, max_links_per_session=2)


@dataclass
class FakeStream:
    id: int
    destroyed: bool = False
    relaying_to: Any = None

    def relay_to(self, other: FakeStream) -> None:
        self.relaying_to = other

    def destroy(self) -> None:
        self.destroyed = True


@dataclass
class FakeSocket:
    made: list[FakeStream] = field(default_factory=list)

    def create_stream(self, firewall: Any = None) -> FakeStream:
        stream = FakeStream(len(self.made) + 1)
        self.made.append(stream)
        return stream


class FakeMessage:
    def __init__(self) -> None:
        self.sent: list[Pair] = []

    def send_nowait(self, value: Pair) -> bool:
        self.sent.append(value)
        return True


class FakeChannel:
    def __init__(self) -> None:
        self.messages = [FakeMessage(), FakeMessage()]


class FakeMux:
    def start_soon(self, fn: Any, *args: Any) -> None:
        pass  # stream watchers: the streams here never close by themselves


def session(server: BlindRelayServer, socket: FakeSocket) -> _Session:
    s = _Session.__new__(_Session)
    s.server, s.mux, s.socket = server, FakeMux(), socket  # type: ignore[assignment]
    s.pending, s.links = set(), {}
    s.channel = FakeChannel()  # type: ignore[assignment]
    server._sessions.add(s)
    return s


ops = st.lists(
    st.one_of(
        st.tuples(st.just("pair"), st.integers(0, 3), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("unpair"), st.integers(0, 3), st.integers(0, 5), st.just(False)),
        st.tuples(st.just("tick"), st.just(0), st.integers(0, 20), st.just(False)),
        st.tuples(st.just("close"), st.integers(0, 3), st.just(0), st.just(False)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_bookkeeping_stays_bounded_and_consistent(steps: list[tuple[str, int, int, bool]]) -> None:
    now = [0.0]
    socket = FakeSocket()
    server = BlindRelayServer(socket, limits=LIMITS, clock=lambda: now[0])  # type: ignore[arg-type]
    sessions = [session(server, socket) for _ in range(4)]
    closed: set[int] = set()
    for op, who, arg, flag in steps:
        s = sessions[who]
        if op == "pair" and who not in closed:
            server._pair(s, Pair(flag, TOKENS[arg], arg))
        elif op == "unpair" and who not in closed:
            server._unpair(s, TOKENS[arg])
        elif op == "tick":
            now[0] += arg
            server.expire()
        elif op == "close":
            server._close_session(s)
            closed.add(who)
        assert len(server._pending) <= LIMITS.max_pending
        for one in sessions:
            assert len(one.pending) <= LIMITS.max_pending_per_session
            assert len(one.links) <= LIMITS.max_links_per_session
        for token, pending in server._pending.items():
            askers = {id(link.session) for link in pending.links if link is not None}
            assert askers
            for one in sessions:
                assert (token in one.pending) == (id(one) in askers)
        for one in sessions:
            for token in one.pending:
                assert token in server._pending
            replies = one.channel.messages[0].sent  # type: ignore[attr-defined]
            ids = {stream.id for stream in socket.made}
            assert all(reply.id in ids for reply in replies)
    for s in sessions:
        server._close_session(s)
    assert server.pending == 0 and server.links == 0
    made = socket.made
    assert all(stream.destroyed for stream in made)
    assert len(made) % 2 == 0
