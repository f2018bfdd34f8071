"""Connecting to a HyperDHT server by its public key (``hyperdht/lib/connect.js``).

``await dht.connect(public_key)``: a FIND_PEER walk towards ``H(public_key)``; each node
that answers with the server's record routes for it, and gets our first Noise IK message
(prologue ``NS_PEER_HANDSHAKE``) in a PEER_HANDSHAKE, which it relays to the server. The
first REPLY that completes the handshake wins. Its payload says how to reach the server
(§4.3 of the reference):

* the server is OPEN, or we were relayed and it offers no hole punching: connect our UDX
  stream (on the DHT's own socket) to its first public address, else the address the
  relaying node saw;
* we asked the server itself (unrelayed): connect to it; it connects back;
* we are OPEN: the server connects to us; our stream adopts its first packet (≤ 10 s);
* a blind relay is in play, the handshake was relayed and we are not OPEN: both pair
  through the relay (:mod:`.relaying`) when the server chose it, or when we chose it and
  the server is not OPEN either;
* otherwise both sides are firewalled: hole punching (:mod:`.connect_punch`), raced with
  the LAN shortcut (a PING to the server's private address when both share a public
  host). When it fails, :func:`relay_fallback` gets the handshake's result (today it
  re-raises the punch's error: a relay must be chosen up front with ``relay_through``).

The secret stream then starts from the handshake's keys: no second handshake on the UDX
stream, exactly as ``NoiseSecretStream.start(rawStream, {handshake})``.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Final

import anyio

from ..connection import DEFAULT_IDLE_TIMEOUT, DEFAULT_KEEPALIVE, Connection
from ..errors import (
    BadHandshakeReplyError,
    CompactDecodeError,
    DHTError,
    HandshakeError,
    PeerConnectionError,
    PeerNotFoundError,
)
from ..keys import KeyPair, check_public_key
from ..protocol.compact import IPv4Address
from ..protocol.handshake import NoiseHandshake, Pattern
from ..protocol.hyperdht_connect import (
    Firewall,
    NoisePayload,
    PayloadError,
    UDXInfo,
    decode_noise_payload,
    encode_noise_payload,
)
from ..protocol.hyperdht_holepunch import SecurePayload, holepunch_secret
from ..protocol.secret_stream import SecretStream
from ..transports._handshake import start_connection
from ..transports.udx import UDXStream
from . import relaying
from .connect_punch import HolepunchError, client_holepunch
from .host import ConnectHost
from .records import NS_PEER_HANDSHAKE, NS_PEER_HOLEPUNCH, hash32
from .router import HandshakeReply, peer_handshake
from .rpc import Address

__all__ = (
    "PASSIVE_CONNECT_TIMEOUT",
    "HandshakeResult",
    "connect",
    "first_public_address",
    "relay_fallback",
)

#: Seconds an OPEN client waits for a firewalled server to connect to it (JS: 10 s).
PASSIVE_CONNECT_TIMEOUT: Final = 10.0
#: Routing nodes tried at most per connect.
MAX_ATTEMPTS: Final = 8


def first_public_address(addresses: tuple[IPv4Address, ...], fallback: Address) -> Address:
    """The first address that is not a bogon (private, loopback, reserved), else
    ``fallback`` (``connect.js getFirstRemoteAddress``)."""
    for address in addresses:
        try:
            ip = ipaddress.IPv4Address(address.host)
        except ValueError:
            continue
        if ip.is_global:
            return (address.host, address.port)
    return fallback


class HandshakeResult:
    """What a finished handshake gives the path that carries the connection: the keys
    (``noise``), the server's payload, the relay's view, and our unconnected stream."""

    __slots__ = ("dht", "noise", "remote", "reply", "stream", "target")

    def __init__(
        self,
        dht: ConnectHost,
        target: bytes,
        noise: NoiseHandshake,
        remote: NoisePayload,
        reply: HandshakeReply,
        stream: UDXStream,
    ) -> None:
        self.dht = dht
        self.target = target
        self.noise = noise
        self.remote = remote
        self.reply = reply
        self.stream = stream

    @property
    def holepunch_secret(self) -> bytes:
        return holepunch_secret(self.noise.handshake_hash, NS_PEER_HOLEPUNCH)


async def relay_fallback(result: HandshakeResult, error: PeerConnectionError) -> Address:
    """Where a blind relay takes over when no direct path exists: connect
    ``result.stream`` through a relay and return the address it now sends to, or raise.
    Replace (``connect.relay_fallback = ...``) or wrap it; this one re-raises ``error``."""
    raise error


class _Attempt:
    """One Noise IK initiator state and its first message (a fresh one per failure: a
    forged reply kills a handshake state, not the connect)."""

    def __init__(self, key_pair: KeyPair, public_key: bytes, payload: bytes) -> None:
        self.noise = NoiseHandshake(
            Pattern.IK,
            initiator=True,
            key_pair=key_pair,
            remote_public_key=public_key,
            prologue=NS_PEER_HANDSHAKE,
        )
        self.message = self.noise.write_message(payload)


async def connect(
    dht: ConnectHost,
    public_key: bytes,
    *,
    key_pair: KeyPair | None = None,
    keepalive: float | None = DEFAULT_KEEPALIVE,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    relay_through: relaying.RelayThroughOption = None,
) -> Connection:
    """See the module docstring (``relay_through``: :mod:`.relaying`). Raises
    :class:`~p2pswarm.errors.PeerNotFoundError` (no node routes for the key),
    :class:`~p2pswarm.errors.PeerConnectionError` (found, but no handshake succeeded, or the
    server refused) and its subclasses."""
    public_key = check_public_key(public_key)
    key_pair = key_pair if key_pair is not None else dht.default_key_pair
    target = hash32(public_key)
    socket = dht.stream_socket()
    stream = socket.create_stream()
    try:
        return await _connect(
            dht, public_key, key_pair, target, stream, keepalive, idle_timeout, relay_through
        )
    except BaseException:
        stream.destroy()
        raise


async def _connect(
    dht: ConnectHost,
    public_key: bytes,
    key_pair: KeyPair,
    target: bytes,
    stream: UDXStream,
    keepalive: float | None,
    idle_timeout: float | None,
    relay_through: relaying.RelayThroughOption = None,
) -> Connection:
    ours = dht.remote_address()
    relay_offer = relaying.offer(relay_through)
    firewall = Firewall.OPEN if ours is not None else Firewall.UNKNOWN
    addresses = [IPv4Address(*ours)] if ours is not None else []
    addresses += [IPv4Address(*a) for a in dht.local_addresses() if _is_private(a[0])]
    payload = encode_noise_payload(
        NoisePayload(
            firewall=firewall,
            addresses4=tuple(addresses),
            udx=UDXInfo(stream.id),
            secret_stream=1,
            relay_through=relay_offer,
        )
    )
    attempt = _Attempt(key_pair, public_key, payload)
    found = 0
    last: PeerConnectionError | None = None
    lookup = dht.find_peer_routes(target)
    result: tuple[NoiseHandshake, NoisePayload, HandshakeReply] | None = None
    try:
        async for route in lookup:
            if route.public_key != public_key:
                continue
            found += 1
            try:
                reply = await peer_handshake(dht, target, attempt.message, route.from_address)
                remote = decode_noise_payload(attempt.noise.read_message(reply.noise))
            except (HandshakeError, CompactDecodeError) as exc:
                last = BadHandshakeReplyError(f"a bad Noise reply from {route.from_address}: {exc}")
                attempt = _Attempt(key_pair, public_key, payload)
            except PeerConnectionError as exc:
                last = exc
            except DHTError as exc:
                last = PeerConnectionError(f"no handshake through {route.from_address}: {exc}")
            else:
                result = (attempt.noise, remote, reply)
                break
            if found >= MAX_ATTEMPTS:
                break
    finally:
        lookup.cancel()
    if result is None:
        if not found:
            raise PeerNotFoundError(f"no node routes for {public_key.hex()[:16]}…")
        assert last is not None
        raise last
    noise, remote, reply = result
    if remote.version != 1:
        raise PeerConnectionError(f"the server speaks noise payload version {remote.version}")
    if remote.error != PayloadError.NONE:
        raise PeerConnectionError(f"the server aborted the connection (error {remote.error})")
    if remote.udx is None:
        raise PeerConnectionError("the server's reply names no UDX stream")
    assert noise.remote_public_key is not None
    machine = SecretStream.from_handshake(
        initiator=True,
        key_pair=key_pair,
        remote_public_key=noise.remote_public_key,
        handshake_hash=noise.handshake_hash,
        tx=noise.tx,
        rx=noise.rx,
    )
    holepunchable = remote.holepunch is not None and bool(remote.holepunch.relays)
    remote_id = remote.udx.id
    relay = relaying.plan(relay_offer, remote.relay_through, server=False)
    # A server that chose a relay pairs there whenever we are not OPEN (JS server.js), even
    # when it is OPEN itself; our own choice is for when neither side is reachable.
    relaying_server = remote.relay_through is not None or remote.firewall != Firewall.OPEN
    if relay is not None and reply.relayed and firewall != Firewall.OPEN and relaying_server:
        redial = functools.partial(connect, dht, keepalive=keepalive, idle_timeout=idle_timeout)
        address = await relaying.pair_through(dht, redial, relay, stream)
    elif not reply.relayed or remote.firewall == Firewall.OPEN or not holepunchable:
        address = first_public_address(remote.addresses4, reply.server_address)
        stream.connect(remote_id, *address)
    elif firewall == Firewall.OPEN:
        address = await _passive(stream, remote_id)
    else:
        address = await _holepunch(HandshakeResult(dht, target, noise, remote, reply, stream))
    return await start_connection(
        stream,
        machine,
        remote_address=address,
        keepalive=keepalive,
        idle_timeout=idle_timeout,
    )


async def _passive(stream: UDXStream, remote_id: int) -> Address:
    """Wait for the server's first packet and connect to where it came from."""
    arrived = anyio.Event()
    where: list[Address] = []

    def adopt(s: UDXStream, address: Address) -> bool:
        if not 0 < address[1] < 65536 or where:
            return True
        s.connect(remote_id, *address)
        where.append(address)
        arrived.set()
        return False

    stream.firewall = adopt
    with anyio.move_on_after(PASSIVE_CONNECT_TIMEOUT):
        await arrived.wait()
    if not where:
        raise PeerConnectionError("the server did not connect to us within 10 s")
    return where[0]


async def _holepunch(result: HandshakeResult) -> Address:
    """Punch (:mod:`.connect_punch`); on failure, :func:`relay_fallback`."""
    remote, reply = result.remote, result.reply
    assert remote.udx is not None
    secure = SecurePayload(result.holepunch_secret)
    try:
        return await client_holepunch(
            result.dht,
            result.target,
            result.stream,
            remote.udx.id,
            remote,
            secure,
            reply.relay_address,
            reply.server_address,
            reply.client_address,
        )
    except HolepunchError as exc:
        return await relay_fallback(result, exc)


def _is_private(host: str) -> bool:
    try:
        return ipaddress.IPv4Address(host).is_private and not host.startswith("127.")
    except ValueError:
        return False
