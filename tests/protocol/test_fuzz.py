"""Hypothesis: chunking never changes what is decoded; random bytes never escape as
anything but the library's own errors."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from p2pswarm.errors import P2PSwarmError
from p2pswarm.keys import KeyPair
from p2pswarm.protocol import Data, KeepAlive, ProtocolViolation, SecretStream

from .helpers import INITIATOR_KEYS, RESPONDER_KEYS, make_pair

EPHEMERAL = b"\x07" * 32


def recorded_session(ik: bool) -> tuple[bytes, list[Any]]:
    """Everything a responder wrote to an initiator with a fixed ephemeral key, and the
    events that initiator decoded from it in one piece."""
    pair = make_pair(ik=ik, initiator_kwargs={"ephemeral_seed": EPHEMERAL})
    r = pair.responder
    wire = bytes(pair.responder_wire)
    wire += r.send(b"a") + r.send_keepalive() + r.send(bytes(range(256)) * 300) + r.send(b"z")
    events = fresh_initiator(ik).receive_data(wire)
    return wire, events


def fresh_initiator(ik: bool) -> SecretStream:
    stream = SecretStream(
        initiator=True,
        key_pair=INITIATOR_KEYS,
        remote_public_key=RESPONDER_KEYS.public_key if ik else None,
        ephemeral_seed=EPHEMERAL,
    )
    stream.data_to_send()
    return stream


SESSIONS = {ik: recorded_session(ik) for ik in (False, True)}


def test_recorded_sessions_decode_fully() -> None:
    for _, events in SESSIONS.values():
        # 76,800 bytes leave as two frames (64 KiB + the rest).
        assert [type(e) for e in events[1:]] == [Data, KeepAlive, Data, Data, Data]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ik=st.booleans(), cuts=st.lists(st.integers(min_value=0, max_value=80_000), max_size=40))
def test_any_chunking_decodes_to_the_same_events(ik: bool, cuts: list[int]) -> None:
    wire, expected = SESSIONS[ik]
    points = sorted({c for c in cuts if c < len(wire)} | {0, len(wire)})
    stream = fresh_initiator(ik)
    events: list[Any] = []
    for start, end in itertools.pairwise(points):
        events += stream.receive_data(wire[start:end])
    assert events == expected


@settings(max_examples=150, deadline=None)
@given(chunks=st.lists(st.binary(min_size=1, max_size=200), max_size=6), initiator=st.booleans())
def test_random_bytes_only_ever_raise_library_errors(chunks: list[bytes], initiator: bool) -> None:
    stream = SecretStream(initiator=initiator, key_pair=KeyPair.from_seed(b"\x05" * 32))
    for chunk in [*chunks, b""]:
        try:
            events = stream.receive_data(chunk)
        except P2PSwarmError:
            return
        assert all(not isinstance(e, ProtocolViolation) for e in events[:-1])


@settings(max_examples=100, deadline=None)
@given(
    prefix=st.integers(min_value=0, max_value=400),
    noise=st.binary(min_size=1, max_size=300),
)
def test_random_bytes_after_a_valid_prefix(prefix: int, noise: bytes) -> None:
    wire, _ = SESSIONS[False]
    stream = fresh_initiator(False)
    try:
        stream.receive_data(wire[:prefix] + noise)
        stream.receive_data(b"")
    except P2PSwarmError:
        pass
