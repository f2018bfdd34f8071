from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import p2pswarm
from p2pswarm.errors import KeyFileError
from p2pswarm.keys import (
    KEY_FILE_TYPE,
    KEY_FILE_VERSION,
    KeyPair,
    check_public_key,
    check_topic,
    topic,
    verify,
)

# libsodium's crypto_sign_seed_keypair of 32 zero bytes (RFC 8032 style derivation).
ZERO_SEED_PUBLIC = bytes.fromhex("3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29")


def test_from_seed_matches_libsodium() -> None:
    kp = KeyPair.from_seed(bytes(32))
    assert kp.public_key == ZERO_SEED_PUBLIC
    assert kp.seed == bytes(32)
    assert kp.secret_key == bytes(32) + ZERO_SEED_PUBLIC


def test_generate_is_random_and_signs() -> None:
    a, b = KeyPair.generate(), KeyPair.generate()
    assert a.public_key != b.public_key
    sig = a.sign(b"hello")
    assert len(sig) == 64
    assert a.verify(b"hello", sig)
    assert verify(a.public_key, b"hello", sig)
    assert not verify(b.public_key, b"hello", sig)
    assert not verify(a.public_key, b"hellO", sig)
    assert not verify(a.public_key, b"hello", sig[:-1])
    assert not verify(b"short", b"hello", sig)


def test_repr_hides_the_seed() -> None:
    kp = KeyPair.from_seed(bytes(range(32)))
    assert kp.seed.hex() not in repr(kp)
    assert kp.public_key.hex()[:16] in repr(kp)


def test_mismatched_secret_key_is_rejected() -> None:
    a, b = KeyPair.generate(), KeyPair.generate()
    with pytest.raises(ValueError, match="does not belong"):
        KeyPair(a.public_key, b.secret_key)


@pytest.mark.parametrize("bad", [b"", b"x" * 31, b"x" * 33])
def test_seed_length_is_checked(bad: bytes) -> None:
    with pytest.raises(ValueError, match="seed must be 32 bytes"):
        KeyPair.from_seed(bad)


def test_seed_type_is_checked() -> None:
    with pytest.raises(TypeError, match="seed must be 32 bytes, got str"):
        KeyPair.from_seed("0" * 32)  # type: ignore[arg-type]


def test_topic_hashes_names() -> None:
    t = topic("my-room")
    assert len(t) == 32
    assert t == topic(b"my-room")
    assert t != topic("my-room2")
    assert p2pswarm.topic is topic
    with pytest.raises(TypeError):
        topic(42)  # type: ignore[arg-type]


def test_check_topic_and_key() -> None:
    assert check_topic(bytearray(32)) == bytes(32)
    with pytest.raises(ValueError, match="topic must be 32 bytes, got 31"):
        check_topic(bytes(31))
    with pytest.raises(TypeError, match=r"p2pswarm\.topic"):
        check_topic("room")
    with pytest.raises(TypeError, match="public key must be 32 bytes, got int"):
        check_public_key(5)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    kp = KeyPair.generate()
    path = tmp_path / "id.key"
    kp.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert KeyPair.load(path) == kp
    assert [p.name for p in tmp_path.iterdir()] == ["id.key"]  # no temp file left behind


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "id.key"
    first = KeyPair.generate()
    first.save(path)
    with pytest.raises(FileExistsError):
        KeyPair.generate().save(path)
    assert KeyPair.load(path) == first
    second = KeyPair.generate()
    second.save(path, overwrite=True)
    assert KeyPair.load(path) == second


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe garbage", "not JSON"),
        (b"[1, 2]", "not a p2pswarm key file"),
        (json.dumps({"type": "ssh-key"}).encode(), "not a p2pswarm key file"),
        (
            json.dumps({"type": "p2pswarm-keypair", "version": 9}).encode(),
            "unsupported key file version",
        ),
        (json.dumps({"type": "p2pswarm-keypair", "version": 1}).encode(), "corrupt key file"),
        (
            json.dumps(
                {"type": "p2pswarm-keypair", "version": 1, "seed": "zz", "public_key": "00"}
            ).encode(),
            "corrupt key file",
        ),
        (
            json.dumps(
                {
                    "type": "p2pswarm-keypair",
                    "version": 1,
                    "seed": "00" * 31,
                    "public_key": "00" * 32,
                }
            ).encode(),
            "wrong key length",
        ),
        (
            json.dumps(
                {
                    "type": "p2pswarm-keypair",
                    "version": 1,
                    "seed": "00" * 32,
                    "public_key": "11" * 32,
                }
            ).encode(),
            "does not match",
        ),
        (b" " * 5000, "larger than"),
    ],
)
def test_corrupt_key_files_raise_and_are_untouched(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(KeyFileError, match=message):
        KeyPair.load(path)
    assert path.read_bytes() == content


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read key file"):
        KeyPair.load(tmp_path / "nope.key")


def _key_documents() -> st.SearchStrategy[object]:
    """JSON shaped roughly like a key file, so the fuzzer reaches the field checks."""
    hex_text = st.binary(max_size=40).map(bytes.hex)
    return st.one_of(
        st.fixed_dictionaries(
            {
                "type": st.just(KEY_FILE_TYPE) | st.text(max_size=8),
                "version": st.just(KEY_FILE_VERSION) | st.integers() | st.text(max_size=3),
            },
            optional={"seed": hex_text | st.text(max_size=70), "public_key": hex_text},
        ),
        st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8), st.lists),
    )


@given(st.binary(max_size=300) | _key_documents().map(lambda d: json.dumps(d).encode()))
@settings(max_examples=200, deadline=None)
def test_key_file_decoder_fuzz_returns_a_key_or_raises_key_file_error(content: bytes) -> None:
    """A hostile key file yields a KeyPair or KeyFileError, never another exception."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "id.key"
        path.write_bytes(content)
        try:
            loaded = KeyPair.load(path)
        except KeyFileError:
            return
        assert loaded.public_key == KeyPair.from_seed(loaded.seed).public_key
