"""Byte-for-byte agreement with the JavaScript implementation.

``vectors/secret_stream_js.json`` was recorded from two ``@hyperswarm/secret-stream``
streams talking to each other (versions in its ``_source`` field), with fixed static and
ephemeral keys so that every handshake byte is reproducible. Our machine, given the same
keys, must write the same handshake messages and stream ids, compute the same handshake
hash, and decrypt everything the JavaScript side sent. (The secretstream headers are
random on both sides, so data frames are compared by decryption, not by bytes.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from p2pswarm.keys import KeyPair
from p2pswarm.protocol import Data, HandshakeComplete, KeepAlive, SecretStream, stream_id
from p2pswarm.protocol.secret_stream import NS_INITIATOR, NS_RESPONDER, NS_SEND

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "secret_stream_js.json").read_text()
)


def test_namespaces_match_hypercore_crypto() -> None:
    assert [NS_INITIATOR.hex(), NS_RESPONDER.hex(), NS_SEND.hex()] == VECTORS["namespaces"]


@pytest.mark.parametrize("pattern", ["XX", "IK"])
def test_key_pairs_from_seeds_match(pattern: str) -> None:
    v = VECTORS[pattern]
    assert (
        KeyPair.from_seed(bytes.fromhex(v["initiator_seed"])).public_key.hex()
        == v["initiator_public_key"]
    )
    assert (
        KeyPair.from_seed(bytes.fromhex(v["responder_seed"])).public_key.hex()
        == v["responder_public_key"]
    )


@pytest.mark.parametrize("pattern", ["XX", "IK"])
def test_stream_ids_match(pattern: str) -> None:
    v = VECTORS[pattern]
    handshake_hash = bytes.fromhex(v["handshake_hash"])
    assert stream_id(handshake_hash, True).hex() == v["initiator_stream_id"]
    assert stream_id(handshake_hash, False).hex() == v["responder_stream_id"]


def plaintexts(events: list[Any]) -> list[str]:
    out: list[str] = []
    for event in events:
        if isinstance(event, Data):
            out.append(event.data.hex())
        elif isinstance(event, KeepAlive):
            out.append("")
    return out


@pytest.mark.parametrize("we_are_initiator", [True, False], ids=["initiator", "responder"])
@pytest.mark.parametrize("pattern", ["XX", "IK"])
def test_replaying_the_js_transcript(pattern: str, we_are_initiator: bool) -> None:
    v = VECTORS[pattern]
    ours = "initiator" if we_are_initiator else "responder"
    theirs = "responder" if we_are_initiator else "initiator"
    our_frames = [bytes.fromhex(f) for f in v[f"{ours}_to_{theirs}"]]
    their_frames = [bytes.fromhex(f) for f in v[f"{theirs}_to_{ours}"]]
    key_pair = KeyPair.from_seed(bytes.fromhex(v[f"{ours}_seed"]))
    stream = SecretStream(
        initiator=we_are_initiator,
        key_pair=key_pair,
        remote_public_key=(
            bytes.fromhex(v["responder_public_key"])
            if we_are_initiator and pattern == "IK"
            else None
        ),
        send_hello=False,  # the JavaScript side sends empty payloads
        ephemeral_seed=bytes.fromhex(v[f"{ours}_ephemeral_seed"]),
    )
    written = stream.data_to_send()
    events: list[Any] = []
    for their_frame in their_frames:
        events += stream.receive_data(their_frame)
        written += stream.data_to_send()

    # Handshake messages: identical bytes. Then the 56-byte header frame: same id.
    header_prefix = (56).to_bytes(3, "little")
    header_at = next(n for n, f in enumerate(our_frames) if f[:3] == header_prefix)
    js_handshake = b"".join(our_frames[:header_at])
    assert js_handshake and written[: len(js_handshake)] == js_handshake
    header = written[len(js_handshake) :]
    assert len(header) == 59 and header[:3] == header_prefix
    assert header[3:35].hex() == v[f"{ours}_stream_id"]

    (done,) = [e for e in events if isinstance(e, HandshakeComplete)]
    assert done.handshake_hash.hex() == v["handshake_hash"]
    assert done.remote_public_key.hex() == v[f"{theirs}_public_key"]
    assert done.remote_hello is None
    assert plaintexts(events) == v[f"received_by_{ours}"]
