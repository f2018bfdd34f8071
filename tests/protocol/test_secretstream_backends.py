"""The libsodium secretstream (``_secretstream``) and the OpenSSL-backed one the machine
uses (``_secretstream_fast``) are interchangeable: same interface, same bytes."""

from __future__ import annotations

import os

import pytest

from p2pswarm.errors import RemoteProtocolError
from p2pswarm.protocol import (
    Data,
    KeepAlive,
    _secretstream,
    _secretstream_fast,
    secret_stream as secret_stream_module,
)

from .helpers import make_pair

SIZES = [0, 1, 63, 64, 1000, 6143, 6144, 6145, 65536, 100_001]


@pytest.mark.parametrize("size", SIZES)
def test_each_decrypts_the_other(size: int) -> None:
    key = os.urandom(32)
    fast_push = _secretstream_fast.Pusher(key)
    plain_pull = _secretstream.Puller(key, fast_push.header)
    plain_push = _secretstream.Pusher(key)
    fast_pull = _secretstream_fast.Puller(key, plain_push.header)
    for _ in range(3):
        message = os.urandom(size)
        assert plain_pull.pull(fast_push.push(message)) == message
        assert fast_pull.pull(memoryview(plain_push.push(bytearray(message)))) == message


def test_libsodium_puller_rejects_short_and_forged_messages() -> None:
    key = os.urandom(32)
    pusher = _secretstream.Pusher(key)
    puller = _secretstream.Puller(key, pusher.header)
    with pytest.raises(RemoteProtocolError):
        puller.pull(b"\x00" * 16)
    forged = bytearray(pusher.push(b"hello"))
    forged[3] ^= 1
    with pytest.raises(RemoteProtocolError):
        puller.pull(bytes(forged))
    with pytest.raises(ValueError):
        _secretstream.Puller(key, b"short header")
    with pytest.raises(ValueError):
        _secretstream.Pusher(b"short key")


def test_the_machine_runs_on_plain_libsodium_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secret_stream_module, "Pusher", _secretstream.Pusher)
    monkeypatch.setattr(secret_stream_module, "Puller", _secretstream.Puller)
    pair = make_pair()
    payload = os.urandom(150_000)
    wire = pair.initiator.send(payload) + pair.initiator.send_keepalive()
    events = pair.responder.receive_data(wire)
    assert b"".join(e.data for e in events if isinstance(e, Data)) == payload
    assert isinstance(events[-1], KeepAlive)
