"""Fuzz targets: one function per decoder, each taking one input as bytes.

A target returns normally for every input the decoder accepts or refuses with the
library's own typed error (anything from :mod:`p2pswarm.errors`); any other exception
escaping a target is a crash. The same functions run under atheris (``fuzz/run.py``) and,
over the seed inputs and every saved regression, in the test suite.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from p2pswarm.dht import messages as own_messages
from p2pswarm.dht.records import decode_record, decode_unannounce
from p2pswarm.errors import P2PSwarmError
from p2pswarm.keys import KeyPair
from p2pswarm.protocol import SecretStream, dht_rpc, hyperdht_messages
from p2pswarm.protocol.compact import Reader
from p2pswarm.protocol.framing import FrameDecoder
from p2pswarm.protocol.handshake import decode_hello
from p2pswarm.protocol.udx.packet import decode_packet

__all__ = ("TARGETS", "run_one")

INITIATOR = KeyPair.from_seed(bytes(range(32)))
RESPONDER = KeyPair.from_seed(bytes(range(1, 33)))
EPHEMERAL = b"\x07" * 32


def _chunks(data: bytes) -> list[bytes]:
    """Split ``data`` at the cut points its first byte picks, so chunking is fuzzed too."""
    if not data:
        return [b""]
    step = data[0] % 17 + 1
    body = data[1:]
    return [body[i : i + step] for i in range(0, len(body), step)] or [b""]


def frame(data: bytes) -> None:
    decoder = FrameDecoder(max_frame_size=4096)
    for chunk in _chunks(data):
        for body in decoder.frames(chunk):
            bytes(body)


def hello(data: bytes) -> None:
    decode_hello(data)


def handshake(data: bytes) -> None:
    """Bytes at a responder that has not met the initiator: the Noise messages and hello."""
    stream = SecretStream(initiator=False, key_pair=RESPONDER)
    for chunk in _chunks(data):
        stream.receive_data(chunk)
        stream.data_to_send()


def _established() -> tuple[SecretStream, SecretStream]:
    initiator = SecretStream(initiator=True, key_pair=INITIATOR, ephemeral_seed=EPHEMERAL)
    responder = SecretStream(initiator=False, key_pair=RESPONDER, ephemeral_seed=EPHEMERAL)
    for _ in range(8):
        moved = False
        data = initiator.data_to_send()
        if data:
            moved = True
            responder.receive_data(data)
        data = responder.data_to_send()
        if data:
            moved = True
            initiator.receive_data(data)
        if not moved:
            break
    assert initiator.handshake_complete and responder.handshake_complete
    return initiator, responder


def secret_stream(data: bytes) -> None:
    """The receive path of an established stream: real ciphertext from the peer with the
    input's damage applied (first byte: mode; then payload), or raw input."""
    initiator, responder = _established()
    if not data:
        return
    mode, rest = data[0], data[1:]
    if mode % 3 == 0:
        wire = rest
    else:
        wire = bytearray(responder.send(rest[: len(rest) // 2]))
        for i, byte in enumerate(rest[len(rest) // 2 :][:8]):
            if wire:
                wire[(byte * 7 + i) % len(wire)] ^= 1 << (byte % 8)
        if mode % 3 == 2:
            wire = wire[: max(0, len(wire) - rest.count(0))]
        wire = bytes(wire)
    for chunk in _chunks(bytes([mode]) + wire):
        initiator.receive_data(chunk)


def own_dht(data: bytes) -> None:
    """Our own DHT wire: a datagram, and the records and unannounces inside one."""
    message = own_messages.decode(data)
    payload = getattr(message, "payload", None)
    if payload:
        for decode in (decode_record, decode_unannounce):
            with contextlib.suppress(P2PSwarmError):
                decode(payload)


_HYPERDHT_VALUES: tuple[Callable[[bytes], object], ...] = (
    hyperdht_messages.decode_peer,
    hyperdht_messages.decode_announce,
    hyperdht_messages.decode_lookup_reply,
    hyperdht_messages.decode_mutable_put_request,
    hyperdht_messages.decode_mutable_get_response,
    hyperdht_messages.decode_mutable_get_request,
)


def dht_rpc_message(data: bytes) -> None:
    """dht-rpc datagrams (HyperDHT's wire), then HyperDHT's value codecs on the value."""
    message = dht_rpc.decode(data)
    if message.value is not None:
        for decode in _HYPERDHT_VALUES:
            with contextlib.suppress(P2PSwarmError):
                decode(message.value)


def hyperdht_value(data: bytes) -> None:
    """HyperDHT's value codecs directly (first byte picks which)."""
    if data:
        _HYPERDHT_VALUES[data[0] % len(_HYPERDHT_VALUES)](data[1:])


def compact(data: bytes) -> None:
    """A program of compact-encoding reads: the first half of the input picks the reads,
    the second half is the buffer they read."""
    half = len(data) // 2
    ops, reader = data[:half], Reader(data[half:])
    for op in ops:
        choice = op % 14
        if choice == 0:
            reader.uint()
        elif choice == 1:
            reader.uint8()
        elif choice == 2:
            reader.uint16()
        elif choice == 3:
            reader.uint32()
        elif choice == 4:
            reader.uint64()
        elif choice == 5:
            reader.buffer(256)
        elif choice == 6:
            reader.optional_buffer(64)
        elif choice == 7:
            reader.string(64)
        elif choice == 8:
            reader.ipv4_address()
        elif choice == 9:
            reader.ipv6_address()
        elif choice == 10:
            reader.ipv4_addresses(8)
        elif choice == 11:
            reader.boolean()
        elif choice == 12:
            reader.bounded_uint(op, "fuzzed")
        else:
            reader.finish()


def udx(data: bytes) -> None:
    decode_packet(data)


#: Name -> target. ``fuzz/run.py --target NAME`` runs one; ``--target all`` each in turn.
TARGETS: dict[str, Callable[[bytes], None]] = {
    "frame": frame,
    "hello": hello,
    "handshake": handshake,
    "secret_stream": secret_stream,
    "own_dht": own_dht,
    "dht_rpc": dht_rpc_message,
    "hyperdht_value": hyperdht_value,
    "compact": compact,
    "udx": udx,
}


def run_one(name: str, data: bytes) -> None:
    """Run target ``name`` on ``data``; the library's typed errors are expected outcomes."""
    with contextlib.suppress(P2PSwarmError):
        TARGETS[name](data)
