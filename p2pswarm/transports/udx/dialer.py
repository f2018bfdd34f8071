"""The encrypted :class:`~p2pswarm.connection.Connection` over a UDX stream, and a UDX dialer.

The secret stream runs over a :class:`~p2pswarm.transports.udx.stream.UDXStream` unchanged:
the same handshake pump as TCP (:mod:`p2pswarm.transports._handshake`), the same bytes as
JS ``@hyperswarm/secret-stream`` over ``udx-native`` (checked against it in
``tests/interop/test_udx_secret_js.py``).

UDX has no connect handshake of its own: each side must learn the other's stream id out of
band. In the Hyperswarm network that is the HyperDHT handshake payload (``udx.id``), so
:class:`UDXDialer` takes the id from a callable that the DHT layer provides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ...connection import DEFAULT_IDLE_TIMEOUT, DEFAULT_KEEPALIVE, Connection
from ...errors import DialError, DialRefusedError, HandshakeRefusedError, P2PSwarmError
from ...keys import KeyPair
from ...peer_record import PeerAddress, PeerRecord
from .._handshake import DEFAULT_HANDSHAKE_TIMEOUT, Authorize, accept_handshake, initiate_handshake
from .socket import UDXSocket
from .stream import UDXStream

__all__ = ("RemoteIdLookup", "UDXDialer", "accept_udx", "connect_udx")

#: ``lookup(record, address)``: the peer's UDX stream id for that address, or None.
RemoteIdLookup = Callable[[PeerRecord, PeerAddress], int | None]


async def connect_udx(
    socket: UDXSocket,
    remote_id: int,
    host: str,
    port: int,
    *,
    key_pair: KeyPair,
    remote_public_key: bytes | None = None,
    local_id: int | None = None,
    topics: Sequence[bytes] = (),
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
    keepalive: float | None = DEFAULT_KEEPALIVE,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    on_stream: Callable[[UDXStream], None] | None = None,
) -> Connection:
    """Open a stream on ``socket`` (id ``local_id``, random when None), connect it to stream
    ``remote_id`` at ``host:port`` and run the initiator's handshake (IK with
    ``remote_public_key``, else XX). ``on_stream(stream)`` runs before the first packet
    leaves: the place to tell the peer our stream id (HyperDHT's handshake payload does).

    :raises ~p2pswarm.errors.HandshakeError: the handshake failed or timed out
    """
    stream = socket.create_stream(local_id)
    if on_stream is not None:
        on_stream(stream)
    stream.connect(remote_id, host, port)
    return await initiate_handshake(
        stream,
        key_pair=key_pair,
        remote_public_key=remote_public_key,
        topics=topics,
        remote_address=(host, port),
        handshake_timeout=handshake_timeout,
        keepalive=keepalive,
        idle_timeout=idle_timeout,
    )


async def accept_udx(
    stream: UDXStream,
    *,
    key_pair: KeyPair,
    authorize: Authorize | None = None,
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
    keepalive: float | None = DEFAULT_KEEPALIVE,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
) -> Connection:
    """Run the responder's handshake over a connected stream."""
    return await accept_handshake(
        stream,
        key_pair=key_pair,
        authorize=authorize,
        remote_address=stream.remote_address,
        handshake_timeout=handshake_timeout,
        keepalive=keepalive,
        idle_timeout=idle_timeout,
    )


class UDXDialer:
    """Dials a record's direct addresses over UDX from one socket, with IK to its key.

    ``remote_ids`` names the peer's stream id per address (the HyperDHT handshake's
    ``udx.id``); an address without one is skipped with a reason. ``on_stream`` sees each
    local stream before it sends (see :func:`connect_udx`).
    """

    def __init__(
        self,
        socket: UDXSocket,
        remote_ids: RemoteIdLookup,
        *,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        keepalive: float | None = DEFAULT_KEEPALIVE,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        on_stream: Callable[[UDXStream], None] | None = None,
    ) -> None:
        self.socket = socket
        self.on_stream = on_stream
        self.remote_ids = remote_ids
        self.handshake_timeout = handshake_timeout
        self.keepalive = keepalive
        self.idle_timeout = idle_timeout

    async def dial(
        self, record: PeerRecord, *, key_pair: KeyPair, topics: Sequence[bytes] = ()
    ) -> Connection:
        """Try each direct address; return the first connection whose handshake succeeds.

        :raises ~p2pswarm.errors.DialError: every address failed (``reasons`` says how)
        """
        reasons: list[str] = []
        refused = False
        for address in record.direct_addresses:
            remote_id = self.remote_ids(record, address)
            if remote_id is None:
                reasons.append(f"{address}: no UDX stream id known")
                continue
            try:
                return await connect_udx(
                    self.socket,
                    remote_id,
                    address.host,
                    address.port,
                    key_pair=key_pair,
                    remote_public_key=record.public_key,
                    topics=topics,
                    handshake_timeout=self.handshake_timeout,
                    keepalive=self.keepalive,
                    idle_timeout=self.idle_timeout,
                    on_stream=self.on_stream,
                )
            except HandshakeRefusedError as exc:
                refused = True
                reasons.append(f"{address}: HandshakeError: {exc}")
            except (P2PSwarmError, ValueError) as exc:
                reasons.append(f"{address}: {type(exc).__name__}: {exc}")
        peer = record.public_key.hex()[:16]
        if refused:
            raise DialRefusedError(f"peer {peer}… refused us", tuple(reasons))
        if not reasons:
            raise DialError(f"peer {peer}… has no direct address to dial")
        raise DialError(f"could not reach peer {peer}… over UDX at any address", tuple(reasons))
