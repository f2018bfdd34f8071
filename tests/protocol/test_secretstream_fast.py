"""The OpenSSL-backed secretstream is libsodium's, byte for byte, in both directions.

The reference is libsodium itself, through PyNaCl: a libsodium state initialised for
*pulling* from a header is the same state ``init_push`` makes with that header, so pushing
from it gives the exact bytes libsodium would have sent.
"""

from __future__ import annotations

import random
import struct

import nacl.bindings as sodium
import pytest
from hypothesis import given, settings, strategies as st
from nacl._sodium import ffi

from p2pswarm.errors import RemoteProtocolError
from p2pswarm.protocol import _secretstream_fast as fast

TAGS = (fast.TAG_MESSAGE, fast.TAG_PUSH, fast.TAG_REKEY, fast.TAG_FINAL)
# Sizes around every boundary that matters: the AEAD shortcut (size % 8 == 0), the
# libsodium padding (size % 16), one and two ChaCha20 blocks, the default threshold, the
# largest message the AEAD shortcut takes.
EDGE_SIZES = (0, 1, 7, 8, 15, 16, 17, 24, 63, 64, 65, 127, 128)
THRESHOLD_SIZES = (2047, 2048, 2049, 2056, 6143, 6144, 6145, 6152, 40960)
LARGE_SIZES = (65536, 65537, 65544, 65535, 100_003)
NO_FAST_PATH = 1 << 40

sizes = st.one_of(
    st.sampled_from(EDGE_SIZES + THRESHOLD_SIZES),
    st.integers(min_value=0, max_value=5000),
    st.sampled_from(LARGE_SIZES),
)
messages = st.lists(
    st.tuples(sizes, st.sampled_from(TAGS), st.integers(min_value=0, max_value=2**32)),
    min_size=1,
    max_size=12,
)
thresholds = st.sampled_from((0, 1, 64, fast.DEFAULT_THRESHOLD, NO_FAST_PATH))
keys = st.binary(min_size=32, max_size=32)


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def reference_state(key: bytes, header: bytes) -> object:
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
    return state


def state_view(state: object) -> memoryview:
    return memoryview(ffi.buffer(state.statebuf))  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None)
@given(key=keys, nonce=st.binary(min_size=24, max_size=24))
def test_hchacha20_is_libsodiums(key: bytes, nonce: bytes) -> None:
    # libsodium's init_pull stores crypto_core_hchacha20(key, header[:16]) as the state key.
    expected = bytes(state_view(reference_state(key, nonce))[:32])
    assert fast.hchacha20(key, nonce[:16]) == expected


@settings(max_examples=150, deadline=None)
@given(key=keys, batch=messages, threshold=thresholds)
def test_push_is_byte_identical_to_libsodium(
    key: bytes, batch: list[tuple[int, int, int]], threshold: int
) -> None:
    pusher = fast.Pusher(key, threshold=threshold)
    reference = reference_state(key, pusher.header)
    for size, tag, seed in batch:
        message = payload(size, seed)
        expected = sodium.crypto_secretstream_xchacha20poly1305_push(reference, message, tag=tag)
        assert pusher.push(message, tag) == expected
    assert bytes(pusher._view[:44]) == bytes(state_view(reference)[:44])


@settings(max_examples=150, deadline=None)
@given(key=keys, batch=messages, threshold=thresholds)
def test_pull_reads_what_libsodium_pushes(
    key: bytes, batch: list[tuple[int, int, int]], threshold: int
) -> None:
    sender = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(sender, key)
    puller = fast.Puller(key, header, threshold=threshold)
    for size, tag, seed in batch:
        message = payload(size, seed)
        sealed = sodium.crypto_secretstream_xchacha20poly1305_push(sender, message, tag=tag)
        assert puller.pull(memoryview(bytearray(sealed))) == message
        assert puller.last_tag == tag


@settings(max_examples=100, deadline=None)
@given(key=keys, batch=messages, threshold=thresholds)
def test_libsodium_pulls_what_we_push(
    key: bytes, batch: list[tuple[int, int, int]], threshold: int
) -> None:
    pusher = fast.Pusher(key, threshold=threshold)
    receiver = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(receiver, pusher.header, key)
    for size, tag, seed in batch:
        message = payload(size, seed)
        opened, got_tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
            receiver, pusher.push(message, tag)
        )
        assert (opened, got_tag) == (message, tag)


@settings(max_examples=200, deadline=None)
@given(
    key=keys,
    size=sizes,
    seed=st.integers(min_value=0, max_value=2**32),
    threshold=thresholds,
    data=st.data(),
)
def test_any_tampering_is_rejected_and_leaves_the_state_usable(
    key: bytes, size: int, seed: int, threshold: int, data: st.DataObject
) -> None:
    pusher = fast.Pusher(key)
    puller = fast.Puller(key, pusher.header, threshold=threshold)
    message = payload(size, seed)
    sealed = pusher.push(message)
    position = data.draw(st.integers(min_value=0, max_value=len(sealed) - 1), label="byte")
    bit = data.draw(st.integers(min_value=0, max_value=7), label="bit")
    tampered = bytearray(sealed)
    tampered[position] ^= 1 << bit
    with pytest.raises(RemoteProtocolError):
        puller.pull(bytes(tampered))
    assert puller.pull(sealed) == message


@pytest.mark.parametrize("threshold", [0, NO_FAST_PATH])
@pytest.mark.parametrize("length", [0, 1, 16])
def test_a_message_shorter_than_its_mac_is_rejected(threshold: int, length: int) -> None:
    puller = fast.Puller(bytes(32), bytes(24), threshold=threshold)
    with pytest.raises(RemoteProtocolError):
        puller.pull(bytes(length))


@pytest.mark.parametrize("threshold", [0, fast.DEFAULT_THRESHOLD, NO_FAST_PATH])
def test_counter_wrap_rekeys_like_libsodium(threshold: int) -> None:
    key = bytes(range(32))
    pusher = fast.Pusher(key, threshold=threshold)
    reference = reference_state(key, pusher.header)
    puller = fast.Puller(key, pusher.header, threshold=threshold)
    # Jump all three states to the last counter value before the 32-bit counter wraps.
    for view in (pusher._view, puller._view, state_view(reference)):
        struct.pack_into("<I", view, 32, 0xFFFFFFFF)
    for size in (0, 3000, 65536, 5, 65537, 2048):
        message = payload(size, size)
        expected = sodium.crypto_secretstream_xchacha20poly1305_push(reference, message)
        assert pusher.push(message) == expected
        assert puller.pull(expected) == message
    assert bytes(pusher._view[:32]) != fast.hchacha20(key, pusher.header[:16])
    # The wrap reset the counter to 1; five more messages followed.
    assert struct.unpack_from("<I", pusher._view, 32)[0] == 6


def test_headers_are_random_and_24_bytes() -> None:
    first, second = fast.Pusher(bytes(32)), fast.Pusher(bytes(32))
    assert len(first.header) == fast.HEADERBYTES
    assert first.header != second.header


@pytest.mark.parametrize("bad", [b"", bytes(31), bytes(33)])
def test_bad_key_or_header_sizes_raise_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError, match="key"):
        fast.Pusher(bad)
    with pytest.raises(ValueError, match="key"):
        fast.Puller(bad, bytes(24))
    with pytest.raises(ValueError, match="header"):
        fast.Puller(bytes(32), bad)


def test_interface_matches_the_libsodium_module() -> None:
    from p2pswarm.protocol import _secretstream as plain

    pusher = plain.Pusher(bytes(32))
    puller = fast.Puller(bytes(32), pusher.header)
    for size in (0, 100, 65536, 70001):
        message = payload(size, 1)
        assert puller.pull(pusher.push(message)) == message
    assert (fast.ABYTES, fast.HEADERBYTES, fast.KEYBYTES) == (
        plain.ABYTES,
        plain.HEADERBYTES,
        plain.KEYBYTES,
    )
