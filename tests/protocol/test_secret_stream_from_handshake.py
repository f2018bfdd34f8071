"""SecretStream.from_handshake: a stream started from a Noise IK handshake completed
elsewhere (HyperDHT's relayed PEER_HANDSHAKE, with its prologue), as JS's
``NoiseSecretStream.start(raw, {handshake})``: only header frames, then data."""

from __future__ import annotations

import pytest

from p2pswarm.errors import HandshakeError, RemoteProtocolError
from p2pswarm.keys import KeyPair
from p2pswarm.protocol import Data
from p2pswarm.protocol.handshake import NoiseHandshake, Pattern
from p2pswarm.protocol.secret_stream import SecretStream

PROLOGUE = b"p" * 32
ALICE = KeyPair.from_seed(b"a" * 32)
BOB = KeyPair.from_seed(b"b" * 32)


def completed(prologue: bytes = PROLOGUE) -> tuple[NoiseHandshake, NoiseHandshake]:
    client = NoiseHandshake(
        Pattern.IK,
        initiator=True,
        key_pair=ALICE,
        remote_public_key=BOB.public_key,
        prologue=prologue,
    )
    server = NoiseHandshake(Pattern.IK, initiator=False, key_pair=BOB, prologue=prologue)
    assert server.read_message(client.write_message(b"hello")) == b"hello"
    assert client.read_message(server.write_message(b"world")) == b"world"
    return client, server


def stream(hs: NoiseHandshake, key_pair: KeyPair) -> SecretStream:
    assert hs.remote_public_key is not None
    return SecretStream.from_handshake(
        initiator=hs.initiator,
        key_pair=key_pair,
        remote_public_key=hs.remote_public_key,
        handshake_hash=hs.handshake_hash,
        tx=hs.tx,
        rx=hs.rx,
    )


def test_both_ends_exchange_data_after_the_header_frames() -> None:
    client_hs, server_hs = completed()
    client, server = stream(client_hs, ALICE), stream(server_hs, BOB)
    assert client.handshake_complete and server.handshake_complete
    assert client.remote_public_key == BOB.public_key
    header_c, header_s = client.data_to_send(), server.data_to_send()
    assert len(header_c) == len(header_s) == 3 + 56
    assert server.receive_data(header_c + client.send(b"to bob")) == [Data(b"to bob")]
    assert client.receive_data(header_s + server.send(b"to alice")) == [Data(b"to alice")]


def test_the_prologue_is_bound_and_a_wrong_header_is_refused() -> None:
    client = NoiseHandshake(
        Pattern.IK,
        initiator=True,
        key_pair=ALICE,
        remote_public_key=BOB.public_key,
        prologue=PROLOGUE,
    )
    server = NoiseHandshake(Pattern.IK, initiator=False, key_pair=BOB, prologue=b"")
    with pytest.raises(HandshakeError):
        server.read_message(client.write_message(b""))
    # two unrelated handshakes: the stream ids differ
    a, _ = completed()
    _, b = completed()
    receiver = stream(b, BOB)
    events = receiver.receive_data(stream(a, ALICE).data_to_send())
    assert isinstance(events[-1].error, RemoteProtocolError)  # type: ignore[union-attr]


def test_bad_key_sizes_are_refused() -> None:
    client_hs, _ = completed()
    with pytest.raises(ValueError):
        SecretStream.from_handshake(
            initiator=True,
            key_pair=ALICE,
            remote_public_key=BOB.public_key,
            handshake_hash=b"x",
            tx=client_hs.tx,
            rx=client_hs.rx,
        )
