"""Blind relay (JS ``blind-relay`` 1.6.1) over protomux channels.

The wire is :mod:`p2pswarm.protocol.blind_relay`; this package holds what the Mux needs to
carry it: :data:`PAIR_CODEC` and :data:`UNPAIR_CODEC`, the message codecs of the
``blind-relay`` channel in JS ``addMessage`` order (type 0 ``pair``, type 1 ``unpair``)::

    channel = mux.create_channel(
        PROTOCOL, id=connection.public_key,          # the client's key, as hyperdht does
        messages=[(PAIR_CODEC, on_pair), (UNPAIR_CODEC, on_unpair)],
    )

On these: :class:`BlindRelayServer` (:mod:`.server`, any peer relaying for others) and
:class:`BlindRelayClient` (:mod:`.client`, asking a relay to pair a UDX stream).
"""

from __future__ import annotations

from ..protocol.blind_relay import PROTOCOL, TOKEN_SIZE, Pair, Unpair
from .client import PAIR_TIMEOUT, BlindRelayClient
from .codecs import PAIR_CODEC, UNPAIR_CODEC, PairCodec, UnpairCodec
from .server import BlindRelayServer, RelayLimits, RelayStats

__all__ = (
    "PAIR_CODEC",
    "PAIR_TIMEOUT",
    "PROTOCOL",
    "TOKEN_SIZE",
    "UNPAIR_CODEC",
    "BlindRelayClient",
    "BlindRelayServer",
    "Pair",
    "PairCodec",
    "RelayLimits",
    "RelayStats",
    "Unpair",
    "UnpairCodec",
)
