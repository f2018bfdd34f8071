"""What HyperDHT signs: namespaces and signable bytes of announces and mutable values.

Each signature covers 64 bytes: a 32-byte namespace naming the command, then a BLAKE2b-256
hash of the message (``hyperdht/lib/persistent.js annSignable``, ``signMutable``). The
namespaces are hypercore-crypto's ``namespace("hyperswarm/dht", [command])``:
``H(H("hyperswarm/dht") || byte(command))``.

An announce signature binds the record to one storing node: its hash covers the topic, the
node's id and the round-trip token that node handed out, so it cannot be replayed to another
node or, once the token has rotated (7.5 to 15 s), to the same one.
"""

from __future__ import annotations

import hashlib
from typing import Final

from ..keys import KeyPair, verify
from ..protocol.hyperdht_messages import (
    Command,
    Peer,
    encode_mutable_signable,
    encode_peer,
)

__all__ = (
    "NS_ANNOUNCE",
    "NS_MUTABLE_PUT",
    "NS_PEER_HANDSHAKE",
    "NS_PEER_HOLEPUNCH",
    "NS_PLUGIN",
    "NS_UNANNOUNCE",
    "announce_signable",
    "hash32",
    "mutable_signable",
    "namespace",
    "sign_announce",
    "sign_mutable",
    "sign_unannounce",
    "verify_announce",
    "verify_mutable",
    "verify_unannounce",
)


def hash32(*parts: bytes) -> bytes:
    """BLAKE2b-256 of the concatenation (libsodium's ``crypto_generichash(_batch)``)."""
    h = hashlib.blake2b(digest_size=32)
    for part in parts:
        h.update(part)
    return h.digest()


def namespace(name: str, command: int) -> bytes:
    """hypercore-crypto's ``namespace(name, [command])[0]``."""
    return hash32(hash32(name.encode("utf-8")), bytes((command,)))


NS_ANNOUNCE: Final = namespace("hyperswarm/dht", Command.ANNOUNCE)
NS_UNANNOUNCE: Final = namespace("hyperswarm/dht", Command.UNANNOUNCE)
NS_MUTABLE_PUT: Final = namespace("hyperswarm/dht", Command.MUTABLE_PUT)
NS_PEER_HANDSHAKE: Final = namespace("hyperswarm/dht", Command.PEER_HANDSHAKE)
NS_PEER_HOLEPUNCH: Final = namespace("hyperswarm/dht", Command.PEER_HOLEPUNCH)
NS_PLUGIN: Final = namespace("hyperswarm/dht", Command.PLUGIN)


def announce_signable(
    ns: bytes, target: bytes, node_id: bytes, token: bytes, peer: Peer, refresh: bytes | None
) -> bytes:
    """``annSignable``: ``ns || H(target || nodeId || token || enc(peer) || refresh)``.

    ``peer`` is encoded exactly as sent, relays included (a storing node verifies before it
    truncates them to three).
    """
    return ns + hash32(target, node_id, token, encode_peer(peer), refresh or b"")


def sign_announce(
    key_pair: KeyPair,
    target: bytes,
    node_id: bytes,
    token: bytes,
    peer: Peer,
    refresh: bytes | None = None,
) -> bytes:
    return key_pair.sign(announce_signable(NS_ANNOUNCE, target, node_id, token, peer, refresh))


def sign_unannounce(
    key_pair: KeyPair, target: bytes, node_id: bytes, token: bytes, peer: Peer
) -> bytes:
    return key_pair.sign(announce_signable(NS_UNANNOUNCE, target, node_id, token, peer, None))


def verify_announce(
    signature: bytes,
    target: bytes,
    node_id: bytes,
    token: bytes,
    peer: Peer,
    refresh: bytes | None,
) -> bool:
    signable = announce_signable(NS_ANNOUNCE, target, node_id, token, peer, refresh)
    return verify(peer.public_key, signable, signature)


def verify_unannounce(
    signature: bytes,
    target: bytes,
    node_id: bytes,
    token: bytes,
    peer: Peer,
    refresh: bytes | None = None,
) -> bool:
    """JS signs an unannounce with no refresh field, but verifies whatever arrived."""
    signable = announce_signable(NS_UNANNOUNCE, target, node_id, token, peer, refresh)
    return verify(peer.public_key, signable, signature)


def mutable_signable(seq: int, value: bytes) -> bytes:
    """``NS_MUTABLE_PUT || H(uint seq || buffer value)``."""
    return NS_MUTABLE_PUT + hash32(encode_mutable_signable(seq, value))


def sign_mutable(key_pair: KeyPair, seq: int, value: bytes) -> bytes:
    return key_pair.sign(mutable_signable(seq, value))


def verify_mutable(public_key: bytes, seq: int, value: bytes, signature: bytes) -> bool:
    return verify(public_key, mutable_signable(seq, value), signature)
