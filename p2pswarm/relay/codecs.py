"""The ``blind-relay`` channel's message codecs (type 0 ``pair``, type 1 ``unpair``)."""

from __future__ import annotations

from typing import Final

from ..protocol.blind_relay import (
    Pair,
    Unpair,
    decode_pair,
    decode_unpair,
    encode_pair,
    encode_unpair,
)

__all__ = ("PAIR_CODEC", "UNPAIR_CODEC", "PairCodec", "UnpairCodec")


class PairCodec:
    """The ``pair`` message as a channel codec (strict: see the wire module)."""

    def encode(self, value: Pair) -> bytes:
        return encode_pair(value)

    def decode(self, data: bytes) -> Pair:
        return decode_pair(data)


class UnpairCodec:
    """The ``unpair`` message as a channel codec."""

    def encode(self, value: Unpair) -> bytes:
        return encode_unpair(value)

    def decode(self, data: bytes) -> Unpair:
        return decode_unpair(data)


PAIR_CODEC: Final = PairCodec()
UNPAIR_CODEC: Final = UnpairCodec()
