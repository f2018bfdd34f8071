"""Valid inputs for each fuzz target, built from the library's own encoders: the corpus the
coverage-guided fuzzer starts mutating from (so it begins past the first checks)."""

from __future__ import annotations

from p2pswarm.dht import messages as own
from p2pswarm.dht.records import create_record, create_unannounce
from p2pswarm.keys import KeyPair, topic
from p2pswarm.protocol import SecretStream, dht_rpc, hyperdht_messages as hm
from p2pswarm.protocol.compact import IPv4Address, Writer
from p2pswarm.protocol.framing import encode_frame_header
from p2pswarm.protocol.handshake import encode_hello
from p2pswarm.protocol.udx.packet import DATA, Packet, encode_packet

from .targets import INITIATOR

__all__ = ("seeds",)

KEYS = KeyPair.from_seed(b"\x09" * 32)
TOPIC = topic("fuzz")


def _initiator_bytes() -> bytes:
    stream = SecretStream(initiator=True, key_pair=INITIATOR, ephemeral_seed=b"\x07" * 32)
    return stream.data_to_send()


def _compact_seed() -> bytes:
    """Reads (uint, uint8, buffer, ipv4 address, finish) and, after them, their bytes."""
    w = Writer().uint(300).uint8(7).buffer(b"abc").ipv4_address(IPv4Address("127.0.0.1", 9))
    data = w.getvalue()
    ops = bytes([0, 1, 5, 8, 13])
    ops += bytes(len(data) - len(ops))  # pad the program (uint reads of 0) to the data size
    return ops + data


def seeds(name: str) -> list[bytes]:
    """A few valid (or nearly valid) inputs for target ``name``."""
    to = IPv4Address("127.0.0.1", 49737)
    peer = hm.Peer(KEYS.public_key, (to,))
    record = create_record(KEYS, TOPIC, 4242, seq=1, expiry=4e9)
    values = [
        hm.encode_peer(peer),
        hm.encode_announce(hm.Announce(peer, None, bytes(64))),
        hm.encode_lookup_reply([hm.encode_peer(peer)], 5),
        hm.encode_mutable_get_request(3),
    ]
    if name == "frame":
        return [b"\x03" + encode_frame_header(5) + b"hello" + encode_frame_header(0)]
    if name == "hello":
        return [encode_hello(()), encode_hello((TOPIC, TOPIC))]
    if name == "handshake":
        return [b"\x10" + _initiator_bytes()]
    if name == "secret_stream":
        return [b"\x01" + b"some plaintext and damage", b"\x00" + bytes(40)]
    if name == "own_dht":
        return [
            own.Request(own.Command.PING, 1, padding=16).encode(),
            own.Request(own.Command.LOOKUP, 2, key=TOPIC).encode(),
            own.Request(own.Command.ANNOUNCE, 3, token=bytes(32), payload=record.encode()).encode(),
            own.Request(
                own.Command.UNANNOUNCE,
                4,
                token=bytes(32),
                payload=create_unannounce(KEYS, TOPIC, seq=1).encode(),
            ).encode(),
            own.Response(
                own.Command.LOOKUP,
                5,
                ("127.0.0.1", 9),
                bytes(20),
                token=bytes(32),
                nodes=(own.NodeContact(bytes(20), "127.0.0.1", 10),),
                records=(("127.0.0.1", record.encode()),),
            ).encode(),
        ]
    if name == "dht_rpc":
        return [
            dht_rpc.Request(1, to, dht_rpc.InternalCommand.PING, True).encode(),
            dht_rpc.Request(
                2, to, hm.Command.ANNOUNCE, token=bytes(32), target=TOPIC, value=values[1]
            ).encode(),
            dht_rpc.Response(
                3, to, id=bytes(32), token=bytes(32), closer_nodes=(to,), value=values[2]
            ).encode(),
        ]
    if name == "hyperdht_value":
        return [bytes([i]) + v for i, v in enumerate(values)]
    if name == "compact":
        return [_compact_seed()]
    if name == "udx":
        return [
            encode_packet(Packet(DATA, 1, 65536, 0, 0, b"payload")),
            encode_packet(Packet(0, 1, 65536, 0, 0, sacks=((1, 3), (5, 9)))),
        ]
    raise KeyError(name)
