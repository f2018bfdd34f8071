"""PEER_HANDSHAKE routing (``hyperdht/lib/router.js``): what a DHT node does with a
handshake that is not for a server of its own, and the client's one request.

A node that stores a server's self-announcement (its route: the address the announce came
from) re-sends a client's FROM_CLIENT handshake to the server as FROM_RELAY, with the
client's tid and the client's address as it saw it; the server's FROM_SERVER answer (a
request with that tid) comes back and leaves as a REPLY to the client, naming the server's
address as this node saw it. A node without a route answers with closer nodes only, so the
client's FIND_PEER walk goes on. Nothing is kept per handshake: a relay costs one datagram
out per datagram in, inside the node's request budgets.

PEER_HOLEPUNCH rounds take the same path: the client sends FROM_CLIENT (naming the server's
address as the relay saw it, from the server's noise payload) from its puncher socket; the
node relays it as FROM_RELAY with the client's address; the server answers FROM_SERVER from
*its* puncher socket, and the node replies to the client naming the address it saw that
answer come from: each side learns the other's punching address. Nothing is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ..errors import BadHandshakeReplyError, CompactDecodeError, PeerConnectionError
from ..protocol.compact import IPv4Address
from ..protocol.hyperdht_connect import Handshake, HandshakeMode, decode_handshake, encode_handshake
from ..protocol.hyperdht_holepunch import Holepunch, decode_holepunch, encode_holepunch
from ..protocol.hyperdht_messages import Command
from .host import ConnectHost
from .rpc import Address, IncomingRequest

__all__ = (
    "BadHolepunchReplyError",
    "HandshakeReply",
    "HolepunchReply",
    "peer_handshake",
    "peer_holepunch",
    "relay_handshake",
    "relay_holepunch",
)


class BadHolepunchReplyError(PeerConnectionError):
    """A PEER_HOLEPUNCH reply that is not a REPLY from the node asked (BAD_HOLEPUNCH_REPLY)."""


#: Sends of one handshake request (JS: ``retries: 3`` in the router's request, 4 sends).
HANDSHAKE_RETRIES: Final = 3


class HandshakeReply:
    """The server's Noise reply and the addresses the relaying node saw."""

    __slots__ = ("client_address", "noise", "relay_address", "relayed", "server_address")

    def __init__(
        self,
        noise: bytes,
        relayed: bool,
        server_address: Address,
        client_address: Address,
        relay_address: Address | None = None,
    ) -> None:
        self.noise = noise
        #: The node we asked (it relayed, unless it was the server).
        self.relay_address = relay_address if relay_address is not None else server_address
        #: The node we asked was not the server itself.
        self.relayed = relayed
        self.server_address = server_address
        self.client_address = client_address


async def peer_handshake(
    dht: ConnectHost, target: bytes, noise: bytes, to: Address, *, from_client: bool | None = None
) -> HandshakeReply:
    """Send our first Noise message to ``to`` (a node routing for ``target``); the REPLY.

    Raises :class:`~p2pswarm.errors.BadHandshakeReplyError` for a reply that is not a
    REPLY with a Noise message (it came from ``to``: the transaction layer matched it).
    """
    value = encode_handshake(Handshake(HandshakeMode.FROM_CLIENT, noise))
    reply = await dht.request(
        to,
        Command.PEER_HANDSHAKE,
        target=target,
        value=value,
        retries=HANDSHAKE_RETRIES,
        from_client=from_client,
    )
    if reply.value is None:
        raise BadHandshakeReplyError(f"{to[0]}:{to[1]} does not route for this server")
    try:
        hs = decode_handshake(reply.value)
    except CompactDecodeError as exc:
        raise BadHandshakeReplyError(f"an undecodable handshake reply: {exc}") from None
    if hs.mode != HandshakeMode.REPLY or not hs.noise or reply.from_.address != to:
        raise BadHandshakeReplyError("the handshake reply is not a REPLY from the node asked")
    server = (hs.peer_address.host, hs.peer_address.port) if hs.peer_address else to
    return HandshakeReply(
        hs.noise, hs.peer_address is not None, server, (reply.to.host, reply.to.port), to
    )


def relay_handshake(dht: ConnectHost, request: IncomingRequest, hs: Handshake) -> None:
    """A handshake for a server that is not ours: relay it along its route, or help route."""
    target = request.target
    if target is None:
        return
    forward = dht.store.forwards.get(target)
    relay = forward.relay if forward is not None else None
    mode = hs.mode
    source = IPv4Address(request.from_.host, request.from_.port)
    if mode == HandshakeMode.FROM_CLIENT:
        if not hs.noise:
            return
        to = hs.relay_address or relay
        if to is None:
            request.send_reply(0, None, token=False, closer_nodes=True)
            return
        value = encode_handshake(Handshake(HandshakeMode.FROM_RELAY, hs.noise, source))
        request.relay(value, (to.host, to.port))
    elif mode == HandshakeMode.FROM_RELAY:
        if relay is None or not hs.noise or hs.peer_address is None:
            return
        value = encode_handshake(
            Handshake(HandshakeMode.FROM_SECOND_RELAY, hs.noise, hs.peer_address, source)
        )
        request.relay(value, (relay.host, relay.port))
    elif mode == HandshakeMode.FROM_SERVER:
        if hs.peer_address is None or not hs.noise:
            return
        value = encode_handshake(Handshake(HandshakeMode.REPLY, hs.noise, source))
        peer = hs.peer_address
        request.send_reply(0, value, token=False, closer_nodes=False, to=(peer.host, peer.port))


class HolepunchReply:
    """The server's sealed round payload, and the addresses the relaying node saw."""

    __slots__ = ("from_address", "payload", "peer_address", "to")

    def __init__(
        self, payload: bytes, peer_address: Address, from_address: Address, to: Address
    ) -> None:
        self.payload = payload
        #: The server's punching socket as the relay saw it.
        self.peer_address = peer_address
        self.from_address = from_address
        #: Our punching socket as the relay saw it.
        self.to = to


async def peer_holepunch(
    dht: ConnectHost,
    target: bytes,
    session: int,
    payload: bytes,
    peer_address: Address,
    to: Address,
    send: Callable[[bytes, Address], None],
) -> HolepunchReply:
    """One round: ``payload`` to the server's session ``session`` through node ``to``,
    sent from ``send``'s socket. Raises :class:`BadHolepunchReplyError`."""
    value = encode_holepunch(
        Holepunch(HandshakeMode.FROM_CLIENT, session, payload, IPv4Address(*peer_address))
    )
    reply = await dht.request(
        to, Command.PEER_HOLEPUNCH, target=target, value=value, retries=HANDSHAKE_RETRIES, send=send
    )
    if reply.value is None:
        raise BadHolepunchReplyError(f"{to[0]}:{to[1]} sent an empty holepunch reply")
    try:
        hp = decode_holepunch(reply.value)
    except CompactDecodeError as exc:
        raise BadHolepunchReplyError(f"an undecodable holepunch reply: {exc}") from None
    if hp.mode != HandshakeMode.REPLY or reply.from_.address != to:
        raise BadHolepunchReplyError("the holepunch reply is not a REPLY from the node asked")
    peer = (hp.peer_address.host, hp.peer_address.port) if hp.peer_address else to
    return HolepunchReply(hp.payload, peer, reply.from_.address, (reply.to.host, reply.to.port))


def relay_holepunch(dht: ConnectHost, request: IncomingRequest, hp: Holepunch) -> None:
    """A round for a server that is not ours (``router.js onpeerholepunch``)."""
    target = request.target
    if target is None:
        return
    forward = dht.store.forwards.get(target)
    relay = forward.relay if forward is not None else None
    source = IPv4Address(request.from_.host, request.from_.port)
    if hp.mode == HandshakeMode.FROM_CLIENT:
        to = hp.peer_address or relay
        if to is None:
            return
        value = encode_holepunch(Holepunch(HandshakeMode.FROM_RELAY, hp.id, hp.payload, source))
        request.relay(value, (to.host, to.port))
    elif hp.mode == HandshakeMode.FROM_SERVER:
        if hp.peer_address is None:
            return
        value = encode_holepunch(Holepunch(HandshakeMode.REPLY, hp.id, hp.payload, source))
        peer = hp.peer_address
        request.send_reply(0, value, token=False, closer_nodes=False, to=(peer.host, peer.port))
