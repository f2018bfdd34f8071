"""The gossip envelope: round trip, strict decoding, signatures bound to the topic."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from p2pswarm import KeyPair
from p2pswarm.errors import GossipMessageError
from p2pswarm.protocol import gossip as wire

KP = KeyPair.from_seed(b"g" * 32)
TOPIC = b"t" * 32
SEQ = 1_800_000_000 * 1_000_000


def _signed(payload: bytes = b"hi", hops: int = 5) -> wire.GossipEnvelope:
    return wire.sign(KP.sign, KP.public_key, TOPIC, SEQ, hops, payload)


def test_round_trip_and_verify() -> None:
    env = _signed()
    back = wire.decode(wire.encode(env))
    assert back == env and back.id == wire.message_id(KP.public_key, SEQ)
    wire.verify(back, TOPIC)
    wire.verify(back.with_hops(1), TOPIC)  # hops are not signed


def test_signature_is_bound_to_topic_payload_and_origin() -> None:
    env = _signed()
    with pytest.raises(GossipMessageError):
        wire.verify(env, b"u" * 32)
    forged = wire.GossipEnvelope(env.origin, env.seq, env.hops, b"evil", env.signature)
    with pytest.raises(GossipMessageError):
        wire.verify(forged, TOPIC)
    other = KeyPair.generate().public_key
    with pytest.raises(GossipMessageError):
        wire.verify(wire.GossipEnvelope(other, env.seq, 1, env.payload, env.signature), TOPIC)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b[:-1],  # truncated
        lambda b: b + b"\x00",  # trailing byte
        lambda b: b[:32] + b"\x00" + b[33:],  # seq 0 (first seq byte is a prefix: invalid)
    ],
)
def test_malformed(mangle: object) -> None:
    data = wire.encode(_signed())
    with pytest.raises(GossipMessageError):
        wire.decode(mangle(data))  # type: ignore[operator]


def test_bounds() -> None:
    with pytest.raises(ValueError):
        _signed(hops=wire.MAX_HOPS + 1)
    with pytest.raises(ValueError):
        _signed(payload=b"x" * (wire.MAX_PAYLOAD + 1))
    with pytest.raises(GossipMessageError, match="hops"):
        wire.decode(wire.encode(_signed().with_hops(wire.MAX_HOPS + 1)))
    with pytest.raises(GossipMessageError, match="positive"):
        wire.decode(wire.encode(_signed().with_hops(0)))
    with pytest.raises(GossipMessageError):
        wire.decode(b"x" * (wire.MAX_PAYLOAD + 300))


@given(st.binary(max_size=300))
def test_decoder_fuzz(data: bytes) -> None:
    try:
        env = wire.decode(data)
    except GossipMessageError:
        return
    assert wire.encode(env) == data
