from __future__ import annotations

import os

import pytest

from p2pswarm.errors import HandshakeError, LocalProtocolError, RemoteProtocolError
from p2pswarm.keys import KeyPair
from p2pswarm.protocol import (
    Data,
    EndOfStream,
    HandshakeComplete,
    KeepAlive,
    Pattern,
    PeerIdentified,
    ProtocolViolation,
    SecretStream,
    StreamState,
    stream_id,
)

from .helpers import INITIATOR_KEYS, RESPONDER_KEYS, frame, make_pair

TOPICS = (b"\x11" * 32, b"\x22" * 32)


def only(events: list[object], kind: type) -> list[object]:
    return [e for e in events if isinstance(e, kind)]


@pytest.mark.parametrize("ik", [False, True], ids=["XX", "IK"])
def test_handshake_completes_with_matching_identities_hash_and_topics(ik: bool) -> None:
    pair = make_pair(ik=ik, topics=TOPICS)
    (done_i,) = pair.initiator_events
    (done_r,) = pair.responder_events
    assert isinstance(done_i, HandshakeComplete) and isinstance(done_r, HandshakeComplete)
    assert done_i.pattern is done_r.pattern is (Pattern.IK if ik else Pattern.XX)
    assert done_i.handshake_hash == done_r.handshake_hash == pair.initiator.handshake_hash
    assert len(done_i.handshake_hash) == 64
    assert done_i.remote_public_key == RESPONDER_KEYS.public_key
    assert done_r.remote_public_key == INITIATOR_KEYS.public_key
    assert done_r.remote_topics == TOPICS == pair.responder.remote_topics
    assert done_i.remote_topics == ()
    assert pair.initiator.state is pair.responder.state is StreamState.OPEN


@pytest.mark.parametrize("ik", [False, True], ids=["XX", "IK"])
def test_data_keepalive_and_end_both_ways(ik: bool) -> None:
    pair = make_pair(ik=ik)
    i, r = pair.initiator, pair.responder
    assert r.receive_data(i.send(b"ping") + i.send_keepalive()) == [Data(b"ping"), KeepAlive()]
    assert i.receive_data(r.send(bytearray(b"pong"))) == [Data(b"pong")]
    assert i.send(b"") == b""
    assert r.receive_data(b"") == [EndOfStream()]
    assert r.state is StreamState.ENDED
    assert r.receive_data(b"") == []
    # Half-close: the other direction still works.
    assert i.receive_data(r.send(b"after end")) == [Data(b"after end")]
    assert (i.bytes_written, i.bytes_read) == (4, 4 + 9)
    assert (r.bytes_written, r.bytes_read) == (4 + 9, 4)


def test_large_send_is_cut_into_frames_of_max_send_size() -> None:
    pair = make_pair(initiator_kwargs={"max_send_size": 1000})
    payload = os.urandom(2500)
    events = pair.responder.receive_data(memoryview(pair.initiator.send(payload)))
    assert [len(e.data) for e in events if isinstance(e, Data)] == [1000, 1000, 500]
    assert b"".join(e.data for e in events if isinstance(e, Data)) == payload


def test_frames_up_to_the_wire_maximum_are_accepted_by_default() -> None:
    pair = make_pair(initiator_kwargs={"max_send_size": 3 * 1024 * 1024})
    payload = os.urandom(3 * 1024 * 1024)
    assert pair.responder.receive_data(pair.initiator.send(payload)) == [Data(payload)]


def test_plain_peer_without_hello_is_accepted() -> None:
    pair = make_pair(initiator_kwargs={"send_hello": False}, responder_kwargs={"send_hello": False})
    assert pair.initiator.remote_hello is None and pair.responder.remote_hello is None
    assert pair.responder.remote_topics == ()
    assert pair.responder.handshake_complete and pair.initiator.handshake_complete


def test_data_sent_right_after_the_handshake_arrives_with_the_header() -> None:
    pair = make_pair(pump=False)
    i, r = pair.initiator, pair.responder
    r.receive_data(i.data_to_send())
    i.receive_data(r.data_to_send())  # XX message 2: the initiator completes now
    wire = i.data_to_send() + i.send(b"early")
    events = r.receive_data(wire)
    assert isinstance(events[0], HandshakeComplete) and events[1:] == [Data(b"early")]


# -- authorization pause -----------------------------------------------------------------------


@pytest.mark.parametrize("ik", [False, True], ids=["XX", "IK"])
def test_responder_pauses_until_accept_peer(ik: bool) -> None:
    pair = make_pair(ik=ik, topics=TOPICS, responder_kwargs={"authorize": True}, pump=False)
    i, r = pair.initiator, pair.responder
    events = r.receive_data(i.data_to_send())
    if not ik:  # XX: the key arrives in message 3
        i.receive_data(r.data_to_send())
        events = r.receive_data(i.data_to_send() + i.send(b"queued"))
    assert events == [PeerIdentified(INITIATOR_KEYS.public_key, TOPICS)]
    assert r.state is StreamState.IDENTIFIED
    assert r.data_to_send() == b""  # nothing leaves before the decision
    with pytest.raises(LocalProtocolError):
        r.receive_data(b"more")
    events = r.accept_peer()
    assert isinstance(events[0], HandshakeComplete)
    assert events[1:] == ([] if ik else [Data(b"queued")])
    pair.pump()
    assert i.handshake_complete and r.remote_public_key == INITIATOR_KEYS.public_key
    with pytest.raises(LocalProtocolError):
        r.accept_peer()


def test_xx_initiator_can_pause_too() -> None:
    pair = make_pair(initiator_kwargs={"authorize": True}, pump=False)
    i, r = pair.initiator, pair.responder
    r.receive_data(i.data_to_send())
    assert i.receive_data(r.data_to_send()) == [PeerIdentified(RESPONDER_KEYS.public_key, ())]
    assert i.data_to_send() == b""
    assert isinstance(i.accept_peer()[0], HandshakeComplete)
    pair.pump()
    assert r.handshake_complete


def test_rejecting_means_closing() -> None:
    pair = make_pair(ik=True, responder_kwargs={"authorize": True}, pump=False)
    pair.responder.receive_data(pair.initiator.data_to_send())
    pair.responder.close()
    assert pair.responder.state is StreamState.CLOSED
    with pytest.raises(LocalProtocolError):
        pair.responder.receive_data(b"x")


# -- local misuse -----------------------------------------------------------------------------


def test_send_before_handshake_is_a_local_error() -> None:
    pair = make_pair(pump=False)
    with pytest.raises(LocalProtocolError):
        pair.initiator.send(b"too early")
    with pytest.raises(LocalProtocolError):
        pair.responder.send_keepalive()


def test_constructor_checks_its_arguments() -> None:
    with pytest.raises(ValueError):
        SecretStream(initiator=False, key_pair=RESPONDER_KEYS, topics=TOPICS)
    with pytest.raises(ValueError):
        SecretStream(initiator=False, key_pair=RESPONDER_KEYS, remote_public_key=b"\x00" * 32)
    with pytest.raises(ValueError):
        SecretStream(initiator=True, key_pair=INITIATOR_KEYS, max_frame_size=10)
    with pytest.raises(ValueError):
        SecretStream(initiator=True, key_pair=INITIATOR_KEYS, max_send_size=0)
    with pytest.raises(ValueError):
        SecretStream(initiator=True, key_pair=INITIATOR_KEYS, topics=[b"\x00"] * 65)


def test_send_after_close_is_a_local_error() -> None:
    pair = make_pair()
    pair.initiator.close()
    with pytest.raises(LocalProtocolError):
        pair.initiator.send(b"x")


# -- hostile input: each ends the stream with a typed error ------------------------------------


def assert_violation(events: list[object], kind: type[Exception], match: str = "") -> Exception:
    assert events, "expected a ProtocolViolation"
    last = events[-1]
    assert isinstance(last, ProtocolViolation)
    assert isinstance(last.error, kind), last.error
    assert match in str(last.error)
    return last.error


def test_garbage_instead_of_a_handshake() -> None:
    responder = SecretStream(initiator=False, key_pair=RESPONDER_KEYS)
    events = responder.receive_data(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
    error = assert_violation(events, HandshakeError)
    assert responder.state is StreamState.FAILED
    with pytest.raises(HandshakeError) as raised:
        responder.receive_data(b"anything")
    assert raised.value is error


def test_random_first_message_of_ik_size() -> None:
    responder = SecretStream(initiator=False, key_pair=RESPONDER_KEYS)
    assert_violation(responder.receive_data(frame(os.urandom(120))), HandshakeError)


def test_oversized_frame_during_handshake_is_a_handshake_error() -> None:
    responder = SecretStream(initiator=False, key_pair=RESPONDER_KEYS)
    assert_violation(responder.receive_data(b"\xff\xff\x01"), HandshakeError, "exceeds")


@pytest.mark.parametrize("ik", [False, True], ids=["XX", "IK"])
def test_tampered_handshake_message(ik: bool) -> None:
    pair = make_pair(ik=ik, pump=False)
    pair.responder.receive_data(pair.initiator.data_to_send())
    reply = bytearray(pair.responder.data_to_send())
    reply[10] ^= 0x40
    assert_violation(pair.initiator.receive_data(bytes(reply)), HandshakeError)


@pytest.mark.parametrize("ik", [False, True], ids=["XX", "IK"])
def test_truncated_handshake_message(ik: bool) -> None:
    pair = make_pair(ik=ik, pump=False)
    pair.responder.receive_data(pair.initiator.data_to_send())
    reply = pair.responder.data_to_send()
    body = reply[3:]
    shorter = body[: len(body) - 5]
    assert_violation(pair.initiator.receive_data(frame(shorter)), HandshakeError)


def test_wrong_responder_key_ik() -> None:
    initiator = SecretStream(
        initiator=True, key_pair=INITIATOR_KEYS, remote_public_key=KeyPair.generate().public_key
    )
    responder = SecretStream(initiator=False, key_pair=RESPONDER_KEYS)
    assert_violation(responder.receive_data(initiator.data_to_send()), HandshakeError)


def test_unknown_hello_version() -> None:
    pair = make_pair(pump=False)
    pair.initiator._hello = bytes([9, 0])  # a future peer
    pair.responder.receive_data(pair.initiator.data_to_send())
    pair.initiator.receive_data(pair.responder.data_to_send())
    events = pair.responder.receive_data(pair.initiator.data_to_send())
    assert_violation(events, HandshakeError, "unknown hello version 9")


def test_payload_in_xx_message_1_is_refused() -> None:
    # 32 bytes of "ephemeral key" plus payload: too short for IK, too long for XX.
    responder = SecretStream(initiator=False, key_pair=RESPONDER_KEYS)
    assert_violation(responder.receive_data(frame(os.urandom(40))), HandshakeError)


def test_eof_during_handshake() -> None:
    pair = make_pair(pump=False)
    pair.responder.receive_data(pair.initiator.data_to_send())
    assert_violation(pair.initiator.receive_data(b""), HandshakeError, "during the handshake")


def split_after_handshake(ik: bool = False) -> tuple[SecretStream, bytes, bytes]:
    """An initiator that has completed its handshake, and the responder's header frame."""
    pair = make_pair(ik=ik, pump=False)
    i, r = pair.initiator, pair.responder
    r.receive_data(i.data_to_send())
    reply = r.data_to_send()
    if ik:  # message 2 and the header frame arrive together
        return i, reply[: len(reply) - 59], reply[len(reply) - 59 :]
    i.receive_data(reply)
    r.receive_data(i.data_to_send())
    return i, b"", r.data_to_send()


def test_wrong_stream_id_in_header_frame() -> None:
    initiator, _handshake, header = split_after_handshake()
    bad = bytearray(header)
    bad[3] ^= 1
    assert_violation(initiator.receive_data(bytes(bad)), RemoteProtocolError, "stream id")


def test_header_frame_of_the_wrong_size() -> None:
    initiator, _, header = split_after_handshake()
    assert_violation(initiator.receive_data(frame(header[3:-1])), RemoteProtocolError, "header")


def test_own_stream_id_reflected_back_is_refused() -> None:
    initiator, _, header = split_after_handshake()
    assert initiator.handshake_hash is not None
    reflected = frame(stream_id(initiator.handshake_hash, True) + header[35:])
    assert_violation(initiator.receive_data(reflected), RemoteProtocolError, "stream id")


def test_frame_longer_than_allowed_after_handshake() -> None:
    pair = make_pair(responder_kwargs={"max_frame_size": 1000})
    wire = pair.initiator.send(b"fine") + pair.initiator.send(b"x" * 2000)
    events = pair.responder.receive_data(wire)
    assert events[0] == Data(b"fine")
    assert_violation(events, RemoteProtocolError, "exceeds the maximum of 1000")


def test_tampered_data_frame_keeps_what_was_decoded_before() -> None:
    pair = make_pair()
    good = pair.initiator.send(b"first") + pair.initiator.send(b"second")
    bad = bytearray(pair.initiator.send(b"third"))
    bad[-1] ^= 1
    events = pair.responder.receive_data(good + bytes(bad) + pair.initiator.send(b"fourth"))
    assert events[:2] == [Data(b"first"), Data(b"second")]
    assert len(events) == 3
    assert_violation(events, RemoteProtocolError, "authentication")
    with pytest.raises(RemoteProtocolError):
        pair.responder.receive_data(b"")


def test_data_frame_shorter_than_its_mac() -> None:
    pair = make_pair()
    assert_violation(
        pair.responder.receive_data(frame(b"\x00" * 16)), RemoteProtocolError, "shorter"
    )


def test_peer_closes_mid_frame() -> None:
    pair = make_pair()
    wire = pair.initiator.send(b"whole") + pair.initiator.send(b"cut short")
    events = pair.responder.receive_data(wire[:-4])
    assert events == [Data(b"whole")]
    assert_violation(pair.responder.receive_data(b""), RemoteProtocolError, "mid-frame")


def test_replayed_data_frame_fails() -> None:
    pair = make_pair()
    message = pair.initiator.send(b"once")
    assert pair.responder.receive_data(message) == [Data(b"once")]
    assert_violation(pair.responder.receive_data(message), RemoteProtocolError)
