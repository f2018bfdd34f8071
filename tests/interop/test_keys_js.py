"""A seed gives the same Ed25519 key pair in p2pswarm as in JavaScript Hyperswarm."""

from __future__ import annotations

import os

import pytest

from p2pswarm import KeyPair

from ._js import SKIP_REASON, js_key_pair

pytestmark = [
    pytest.mark.interop,
    pytest.mark.anyio,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]


async def test_js_key_pair_from_a_seed_is_ours() -> None:
    # hypercore-crypto's keyPair(seed) and secret-stream's own keyPair(seed), both through
    # sodium's crypto_sign_seed_keypair, against KeyPair.from_seed.
    for _ in range(3):
        seed = os.urandom(32)
        message = os.urandom(100)
        js = await js_key_pair(seed, message)
        ours = KeyPair.from_seed(seed)
        assert bytes.fromhex(js["publicKey"]) == ours.public_key
        assert bytes.fromhex(js["streamKeyPair"]) == ours.public_key
        # Ed25519 signatures are deterministic: equal signatures mean equal secret keys.
        assert bytes.fromhex(js["signature"]) == ours.sign(message)
