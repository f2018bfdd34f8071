"""The client side of JS ``blind-relay`` 1.6.1: ask a relay to pair our UDX stream.

``client = BlindRelayClient.of(connection)`` opens the ``blind-relay`` channel on the
connection to the relay (id: our public key, as hyperdht passes
``relaySocket.publicKey``); ``remote_id = await client.pair(is_initiator, token,
stream)`` sends our stream's id and waits for the relay's answer, the id of the relay's
stream for our side. The caller then connects ``stream`` to ``remote_id`` at the relay's
UDX address, and the peer that presented the same token (the other side) is at the far
end. Only the two ends hold the secret stream's keys; the relay forwards ciphertext.
"""

from __future__ import annotations

from typing import Final
from weakref import WeakKeyDictionary

import anyio

from ..connection import Connection
from ..errors import ChannelClosedError, RelayPairingError
from ..mux import Channel, Mux
from ..protocol.blind_relay import PROTOCOL, TOKEN_SIZE, Pair, Unpair
from ..transports.udx import UDXStream
from .codecs import PAIR_CODEC, UNPAIR_CODEC

__all__ = ("PAIR_TIMEOUT", "BlindRelayClient")

#: Seconds a pairing may wait for its other side (hyperdht's relay timeout).
PAIR_TIMEOUT: Final = 15.0

_clients: WeakKeyDictionary[Mux, BlindRelayClient] = WeakKeyDictionary()


class _Request:
    def __init__(self, is_initiator: bool) -> None:
        self.is_initiator = is_initiator
        self.done = anyio.Event()
        self.remote_id: int | None = None
        self.error: str | None = None

    def finish(self, remote_id: int | None, error: str | None = None) -> None:
        if not self.done.is_set():
            self.remote_id, self.error = remote_id, error
            self.done.set()


class BlindRelayClient:
    """See the module docstring. The connection's Mux must be running (the caller's)."""

    def __init__(self, mux: Mux, *, id: bytes | None = None) -> None:
        self.mux = mux
        if id is None:
            id = mux.connection.public_key
        self._requests: dict[bytes, _Request] = {}
        channel = mux.create_channel(
            PROTOCOL,
            id,
            messages=[(PAIR_CODEC, self._on_pair), UNPAIR_CODEC],
            on_close=self._on_close,
        )
        if channel is None:
            raise ValueError("this connection has a blind-relay channel already")
        self.channel: Channel = channel
        channel.open()

    @classmethod
    def of(cls, connection: Connection | Mux) -> BlindRelayClient:
        """The connection's client, made on first use (JS ``Client.from``)."""
        mux = connection if isinstance(connection, Mux) else Mux.of(connection)
        client = _clients.get(mux)
        if client is None or client.closed:
            client = _clients[mux] = cls(mux)
        return client

    @property
    def closed(self) -> bool:
        return self.channel.closed

    async def pair(
        self, is_initiator: bool, token: bytes, stream: UDXStream, *, within: float = PAIR_TIMEOUT
    ) -> int:
        """Pair ``stream`` under ``token``; returns the relay stream id to connect it to.

        :raises ~p2pswarm.errors.RelayPairingError: already pairing this token, the channel
            closed, the pairing was cancelled, or no answer within ``within`` seconds
        """
        if len(token) != TOKEN_SIZE:
            raise ValueError(f"a blind-relay token is {TOKEN_SIZE} bytes")
        if self.closed:
            raise RelayPairingError("the relay's channel is closed")
        if token in self._requests:
            raise RelayPairingError("this token is already pairing")
        request = _Request(is_initiator)
        self._requests[token] = request
        try:
            try:
                self.channel.messages[0].send_nowait(Pair(is_initiator, token, stream.id, 0))
            except ChannelClosedError:
                raise RelayPairingError("the relay's channel is closed") from None
            with anyio.move_on_after(within):
                await request.done.wait()
            if not request.done.is_set():
                raise RelayPairingError(f"the relay did not pair within {within} s")
            if request.remote_id is None:
                raise RelayPairingError(request.error or "pairing cancelled")
            return request.remote_id
        finally:
            if self._requests.get(token) is request:
                del self._requests[token]

    def unpair(self, token: bytes) -> None:
        """Cancel a pairing, pending or established (the relay destroys both streams)."""
        request = self._requests.pop(token, None)
        if request is not None:
            request.finish(None, "pairing cancelled")
        if not self.closed:
            self.channel.messages[1].send_nowait(Unpair(token))

    def close(self) -> None:
        self.channel.close()

    def _on_pair(self, message: Pair, channel: Channel) -> None:
        request = self._requests.get(message.token)
        if request is None or request.is_initiator != message.is_initiator:
            return
        request.finish(message.id)

    def _on_close(self, remote: bool, channel: Channel) -> None:
        for request in self._requests.values():
            request.finish(None, "the relay's channel closed")
        self._requests.clear()
