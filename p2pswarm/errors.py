"""The one exception tree of p2pswarm.

Every error the library raises on purpose derives from :class:`P2PSwarmError`, so an
application can catch the library's failures without catching its own bugs. Errors from
the dependencies (``cryptography.exceptions.InvalidTag``, ``noise`` exceptions, ``OSError``
from a socket) are translated at one boundary each and never reach users raw.

Bad arguments at the API are not in this tree: they raise :class:`TypeError` or
:class:`ValueError` with a message saying what was expected, as Python users expect.
"""

from __future__ import annotations

__all__ = (
    "BadHandshakeReplyError",
    "ChannelClosedError",
    "ChannelError",
    "ChannelOverflowError",
    "ChannelProtocolError",
    "CodecError",
    "CompactDecodeError",
    "DHTError",
    "DHTRPCDecodeError",
    "DHTRequestError",
    "DHTTimeoutError",
    "DialError",
    "DialRefusedError",
    "DuplicateConnectionError",
    "GossipMessageError",
    "HandshakeError",
    "HandshakeRefusedError",
    "HandshakeTimeoutError",
    "HolepunchUnavailableError",
    "IdleTimeoutError",
    "InvalidRecordError",
    "KeyFileError",
    "LocalProtocolError",
    "MessageDecodeError",
    "MutablePutError",
    "NoPeersError",
    "NodeInfoError",
    "P2PSwarmError",
    "PeerBannedError",
    "PeerConnectionError",
    "PeerNotFoundError",
    "ProtocolError",
    "RPCError",
    "RateLimitedError",
    "RelayError",
    "RelayMessageError",
    "RelayPairingError",
    "RemoteError",
    "RemoteProtocolError",
    "RequestTimeoutError",
    "SeqReusedError",
    "SeqTooLowError",
    "SwarmClosedError",
    "UDXError",
    "UDXPacketError",
    "UDXResetError",
    "UDXTimeoutError",
)


class P2PSwarmError(Exception):
    """Base of every error p2pswarm raises on purpose."""


class ProtocolError(P2PSwarmError):
    """The encrypted-stream protocol was broken; the connection is unusable.

    Never raised directly: the subclass says whose fault it was (h11's convention).
    """

    def __init__(self, msg: str) -> None:
        if type(self) is ProtocolError:
            raise TypeError(
                "ProtocolError is abstract: raise LocalProtocolError or RemoteProtocolError"
            )
        super().__init__(msg)


class LocalProtocolError(ProtocolError):
    """This side tried to do something the protocol forbids.

    For example sending after ``send_eof()``, or a single write larger than a frame can hold.
    """


class RemoteProtocolError(ProtocolError):
    """The remote peer sent bytes that break the protocol.

    For example a frame longer than the configured maximum, a wrong stream id in the
    header frame, or a data frame that fails authentication. The connection is closed;
    everything delivered before the fault stays delivered.
    """


class CompactDecodeError(RemoteProtocolError):
    """Bytes from the network do not decode as compact-encoding (the layout of every
    Hyperswarm wire message): truncated, a non-canonical or out-of-range integer, an array or
    buffer above its bound, invalid UTF-8, or trailing bytes. The message is dropped.
    """


class ChannelProtocolError(RemoteProtocolError):
    """The peer broke protomux's framing: an open for a channel id already in use or out of
    sequence, a reject of a channel never opened, a malformed or oversized control message, a
    batch inside a batch, more channels or unpaired opens than the limits allow. The whole
    connection is dropped (JS protomux destroys its stream in the same cases)."""


class ChannelOverflowError(ChannelProtocolError):
    """The peer sent more to channels it opened but we have not paired yet than the buffer
    for them holds. JS protomux pauses its stream at 32 KiB; past our hard bound the
    connection is dropped instead of buffering without end."""


class CodecError(ChannelProtocolError):
    """A channel message does not decode with its channel's codec (malformed or oversized
    JSON or compact fields, trailing bytes). JS protomux destroys the stream when an
    encoding throws; so does the Mux."""


class RelayMessageError(CodecError):
    """A blind-relay ``pair`` or ``unpair`` message is malformed (truncated token, a stream
    id beyond a u32, trailing bytes): the connection to that peer is dropped."""


class RelayError(P2PSwarmError):
    """Base of the blind relay's errors (pairing two peers' UDX streams through a third)."""


class RelayPairingError(RelayError):
    """A blind-relay pairing did not complete: the relay's channel closed, the pairing was
    cancelled (``unpair``), it timed out, or the token is already pairing on this client."""


class ChannelError(P2PSwarmError):
    """Base of the errors of protomux channels used by this side."""


class ChannelClosedError(ChannelError):
    """The channel is closed (by either side, by a reject, or with its connection): no more
    messages go out on it."""


class RPCError(P2PSwarmError):
    """Base of the request/response errors of :mod:`p2pswarm.rpc`."""


class RemoteError(RPCError):
    """The peer's handler failed (or knows no such method): ``code`` and ``message`` are
    what it sent back. The connection stays open."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class NoPeersError(RPCError):
    """No connected peer speaks the request protocol (or all were excluded)."""


class RequestTimeoutError(RPCError):
    """No reply arrived in time; the request's id is freed and a late reply is dropped."""


class RateLimitedError(RemoteError):
    """The peer refused our request because we exceeded its rate limit."""


class GossipMessageError(ChannelProtocolError):
    """A gossip message is malformed (truncated, oversized, a hop count above the limit) or
    its origin's signature does not verify: the peer that sent it forged or broke it, and
    its connection is dropped. Duplicates and stale messages are not errors: they are
    dropped silently (a mesh delivers copies by design)."""


class NodeInfoError(ChannelProtocolError):
    """A peer's node info is not a JSON object within the size bound, or the peer kept
    pushing updates far past the rate limit: its connection is dropped."""


class HandshakeError(RemoteProtocolError):
    """The Noise handshake failed: garbage, a tampered message, a wrong key, a bad hello.

    Raised instead of the raw ``InvalidTag`` or ``noise`` exception. The handshake state is
    discarded after any such failure.
    """


class HandshakeRefusedError(HandshakeError):
    """The peer closed the connection after reading our first handshake message, before
    replying: it read our key and refused us (it already holds a connection to us that
    the dedup rule prefers, or it bans, firewalls, is full or is closing)."""


class HandshakeTimeoutError(HandshakeError):
    """The handshake did not complete within the configured handshake timeout."""


class IdleTimeoutError(P2PSwarmError):
    """Nothing (not even a keep-alive) arrived within the connection's idle timeout.

    The remote peer is taken as dead and the connection is closed.
    """


class DialError(P2PSwarmError):
    """No dialling strategy could produce an authenticated stream to the peer.

    ``reasons`` holds one line per address or strategy tried, in order.
    """

    def __init__(self, msg: str, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(msg)
        self.reasons = reasons


class DialRefusedError(DialError):
    """No address worked and at least one refused our handshake
    (:class:`HandshakeRefusedError`): the peer, or whoever now listens there, was reached
    and said no."""


class PeerBannedError(P2PSwarmError):
    """The peer is banned (by ``PeerInfo.ban()`` or the firewall); no dial or handshake."""


class DuplicateConnectionError(P2PSwarmError):
    """The connection lost the dedup rule to another connection with the same peer."""


class SwarmClosedError(P2PSwarmError):
    """The swarm is closed (or closing) and cannot take this call."""


class KeyFileError(P2PSwarmError):
    """A key file is unreadable, corrupt or not a p2pswarm key file. It is left untouched."""


class DHTError(P2PSwarmError):
    """Base of the discovery layer's errors."""


class DHTTimeoutError(DHTError):
    """A DHT request got no reply after all its retransmits."""


class PeerNotFoundError(DHTError):
    """No DHT node knows a record for the requested public key."""


class PeerConnectionError(DHTError):
    """A server was found by key but no connection came of it: every relayed handshake
    failed, timed out or was refused (the server's firewall, an incompatible version)."""


class BadHandshakeReplyError(PeerConnectionError):
    """A PEER_HANDSHAKE reply that is not a REPLY from the node we asked, or whose Noise
    message or payload does not decode: forged, replayed or garbage."""


class HolepunchUnavailableError(PeerConnectionError):
    """Both sides are firewalled and no direct path was found: hole punching failed (or
    cannot work, two random NATs) and no blind relay took over. The hole puncher raises
    the subclass ``p2pswarm.hyperdht.connect_punch.HolepunchError``, with hyperdht's
    error ``code``."""


class MessageDecodeError(DHTError):
    """A DHT datagram is malformed: wrong version, truncated, oversized or out of bounds.

    The receive loop drops the datagram and keeps serving; callers of the codec see this.
    """


class InvalidRecordError(DHTError):
    """An announce record is malformed, expired, or its signature does not verify."""


class DHTRPCDecodeError(MessageDecodeError):
    """A datagram does not decode as a dht-rpc request or response (the HyperDHT wire):
    wrong type byte, truncated, a bad varint, unknown flags, trailing bytes or over its
    bounds. The datagram is dropped; the sender gets no reply.
    """


class DHTRequestError(DHTError):
    """A dht-rpc request could not be sent or completed: the node is closed, or the
    request was cancelled with it. (No reply in time is :class:`DHTTimeoutError`.)
    """


class MutablePutError(DHTError):
    """No node stored a mutable value: every storing node that answered refused it.

    The subclass says why; ``refusals`` counts the nodes that said so.
    """

    def __init__(self, msg: str, refusals: int = 0) -> None:
        super().__init__(msg)
        self.refusals = refusals


class SeqReusedError(MutablePutError):
    """The nodes already hold a different value under the same ``seq`` (HyperDHT error 16,
    SEQ_REUSED): a new value needs a higher ``seq``."""


class SeqTooLowError(MutablePutError):
    """The nodes already hold a value with a higher ``seq`` (HyperDHT error 17,
    SEQ_TOO_LOW)."""


class UDXError(P2PSwarmError):
    """Base of the UDX transport's errors (reliable streams over UDP, libudx's wire)."""


class UDXPacketError(UDXError):
    """A datagram is not a well-formed UDX packet: truncated, a wrong magic byte or version,
    unknown type bits, a data offset past the end, a ragged or oversized SACK list.

    The socket drops such a datagram (or hands a non-UDX one to its message handler); only
    callers of the codec see this.
    """


class UDXResetError(UDXError):
    """The remote end destroyed the stream (a DESTROY packet): it will send nothing more and
    read nothing more. Like a TCP reset, data still unacknowledged is lost."""


class UDXTimeoutError(UDXError):
    """One packet went unacknowledged through six retransmission timeouts (libudx's bound):
    the peer or the path is taken as dead and the stream is closed."""
