"""The values of HyperDHT's connect messages (``hyperdht/lib/messages.js``): the relayed
``handshake`` carried by PEER_HANDSHAKE and the ``noisePayload`` inside its Noise messages.

A client reaches a server by sending PEER_HANDSHAKE to a DHT node that routes for it; the
node re-sends the request (same tid) to the server, the server's answer goes back the same
way. ``mode`` says which leg a message is on. The Noise messages carry a ``noisePayload``:
the sender's firewall type, its addresses, holepunch info, the id of its UDX stream and the
secret-stream version, from which both sides pick the path of the connection.

Strict where JS is: bounded arrays and buffers, shortest-form integers. Two deliberate
leniencies, both as JS: unknown flag bits are ignored, and a ``noisePayload`` may carry
trailing bytes (later versions append fields behind new flags; the payload is
authenticated by Noise, so nothing there is an attacker's). A payload whose version is not
1 decodes to a :class:`NoisePayload` with only ``version`` set, for the caller to refuse
(VERSION_MISMATCH), as ``messages.js`` does. Failures raise
:class:`~p2pswarm.errors.CompactDecodeError`. Sans-IO.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final, NamedTuple

from ..errors import CompactDecodeError
from .compact import IPv4Address, IPv6Address, Reader, Writer

__all__ = (
    "MAX_HANDSHAKE_NOISE",
    "MAX_PAYLOAD_ADDRESSES",
    "NOISE_PAYLOAD_VERSION",
    "Firewall",
    "Handshake",
    "HandshakeMode",
    "HolepunchInfo",
    "NoisePayload",
    "PayloadError",
    "RelayInfo",
    "RelayThrough",
    "UDXInfo",
    "decode_handshake",
    "decode_noise_payload",
    "encode_handshake",
    "encode_noise_payload",
)

#: A Noise message in a handshake value fits one datagram.
MAX_HANDSHAKE_NOISE: Final = 2048
#: Addresses (and relays) per list in a payload, at most.
MAX_PAYLOAD_ADDRESSES: Final = 64
NOISE_PAYLOAD_VERSION: Final = 1


class HandshakeMode(IntEnum):
    """Which leg of the relay a PEER_HANDSHAKE (or PEER_HOLEPUNCH) value is on."""

    FROM_CLIENT = 0
    FROM_SERVER = 1
    FROM_RELAY = 2
    FROM_SECOND_RELAY = 3
    REPLY = 4


class Firewall(IntEnum):
    """A peer's firewall as it reports it (``hyperdht/lib/constants.js FIREWALL``)."""

    UNKNOWN = 0
    OPEN = 1
    CONSISTENT = 2
    RANDOM = 3


class PayloadError(IntEnum):
    """The ``error`` field of a noise or holepunch payload."""

    NONE = 0
    ABORTED = 1
    VERSION_MISMATCH = 2
    TRY_LATER = 3


class Handshake(NamedTuple):
    mode: int
    noise: bytes
    peer_address: IPv4Address | None = None
    relay_address: IPv4Address | None = None


class RelayInfo(NamedTuple):
    """A node relaying for the server, and the server's address as that node sees it."""

    relay_address: IPv4Address
    peer_address: IPv4Address


class HolepunchInfo(NamedTuple):
    id: int
    relays: tuple[RelayInfo, ...] = ()


class UDXInfo(NamedTuple):
    """The sender's UDX stream id (what the other side connects its stream to)."""

    id: int
    seq: int = 0
    reusable_socket: bool = False
    version: int = 1


class RelayThrough(NamedTuple):
    public_key: bytes
    token: bytes
    version: int = 1


class NoisePayload(NamedTuple):
    version: int = NOISE_PAYLOAD_VERSION
    error: int = PayloadError.NONE
    firewall: int = Firewall.UNKNOWN
    holepunch: HolepunchInfo | None = None
    addresses4: tuple[IPv4Address, ...] = ()
    addresses6: tuple[IPv6Address, ...] = ()
    udx: UDXInfo | None = None
    secret_stream: int | None = None
    relay_through: RelayThrough | None = None
    relay_addresses: tuple[IPv4Address, ...] | None = None


def encode_handshake(handshake: Handshake) -> bytes:
    w = Writer()
    flags = (1 if handshake.peer_address else 0) | (2 if handshake.relay_address else 0)
    w.uint(flags).uint(handshake.mode).buffer(handshake.noise)
    if handshake.peer_address:
        w.ipv4_address(handshake.peer_address)
    if handshake.relay_address:
        w.ipv4_address(handshake.relay_address)
    return w.getvalue()


def decode_handshake(data: bytes) -> Handshake:
    """A PEER_HANDSHAKE request or reply value (trailing bytes ignored, as JS)."""
    r = Reader(data)
    flags = r.uint()
    mode = r.uint()
    noise = r.buffer(MAX_HANDSHAKE_NOISE)
    peer = r.ipv4_address() if flags & 1 else None
    relay = r.ipv4_address() if flags & 2 else None
    return Handshake(mode, noise, peer, relay)


def _write_relay(w: Writer, relay: RelayInfo) -> None:
    w.ipv4_address(relay.relay_address).ipv4_address(relay.peer_address)


def _read_relay(r: Reader) -> RelayInfo:
    return RelayInfo(r.ipv4_address(), r.ipv4_address())


def encode_noise_payload(payload: NoisePayload) -> bytes:
    flags = 0
    if payload.holepunch is not None:
        flags |= 1
    if payload.addresses4:
        flags |= 2
    if payload.addresses6:
        flags |= 4
    if payload.udx is not None:
        flags |= 8
    if payload.secret_stream is not None:
        flags |= 16
    if payload.relay_through is not None:
        flags |= 32
    if payload.relay_addresses is not None:
        flags |= 64
    w = Writer()
    w.uint(NOISE_PAYLOAD_VERSION).uint(flags).uint(payload.error).uint(payload.firewall)
    if payload.holepunch is not None:
        w.uint(payload.holepunch.id)
        w.array(payload.holepunch.relays, _write_relay)
    if payload.addresses4:
        w.ipv4_addresses(payload.addresses4)
    if payload.addresses6:
        w.array(payload.addresses6, Writer.ipv6_address)
    if payload.udx is not None:
        udx = payload.udx
        w.uint(1).uint(1 if udx.reusable_socket else 0).uint(udx.id).uint(udx.seq)
    if payload.secret_stream is not None:
        w.uint(1)
    if payload.relay_through is not None:
        relay = payload.relay_through
        w.uint(1).uint(0).fixed(relay.public_key, 32).fixed(relay.token, 32)
    if payload.relay_addresses is not None:
        w.ipv4_addresses(payload.relay_addresses)
    return w.getvalue()


def decode_noise_payload(data: bytes) -> NoisePayload:
    """A decrypted Noise payload; see the module docstring for what is lenient."""
    r = Reader(data)
    version = r.uint()
    if version != NOISE_PAYLOAD_VERSION:
        return NoisePayload(version=version)
    flags = r.uint()
    error = r.uint()
    firewall = r.uint()
    holepunch = None
    if flags & 1:
        hp_id = r.uint()
        holepunch = HolepunchInfo(hp_id, tuple(r.array(_read_relay, MAX_PAYLOAD_ADDRESSES)))
    addresses4 = tuple(r.ipv4_addresses(MAX_PAYLOAD_ADDRESSES)) if flags & 2 else ()
    addresses6 = tuple(r.array(Reader.ipv6_address, MAX_PAYLOAD_ADDRESSES)) if flags & 4 else ()
    udx = None
    if flags & 8:
        udx_version = r.uint()
        features = r.uint()
        udx_id = r.uint()
        seq = r.uint()
        if udx_id >= 1 << 32 or seq >= 1 << 32:
            raise CompactDecodeError("a UDX stream id and sequence are 32-bit")
        udx = UDXInfo(udx_id, seq, bool(features & 1), udx_version)
    secret_stream = r.uint() if flags & 16 else None
    relay_through = None
    if flags & 32:
        rt_version = r.uint()
        r.uint()
        relay_through = RelayThrough(r.fixed(32), r.fixed(32), rt_version)
    relay_addresses = tuple(r.ipv4_addresses(MAX_PAYLOAD_ADDRESSES)) if flags & 64 else None
    return NoisePayload(
        version,
        error,
        firewall,
        holepunch,
        addresses4,
        addresses6,
        udx,
        secret_stream,
        relay_through,
        relay_addresses,
    )
