"""Our protomux state machine writes what JS protomux writes, and decodes like it.

``protomux_vectors.js`` runs a fixed script of calls on the real protomux over a fake stream
(recording each write: one secret-stream message) and then feeds it the remote messages
given here; the same script and messages go through :class:`Protomux`. The written bytes
must be identical, and both must make the same of the remote's messages (opens paired,
batches split, rejects and closes, ids reused).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from p2pswarm.protocol.compact import Reader, Writer
from p2pswarm.protocol.protomux import (
    BatchEnd,
    ChannelClosed,
    ChannelMessage,
    ChannelOpened,
    Protomux,
)

from ._js import HERE, NODE, NODE_MODULES

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        NODE is None or not (NODE_MODULES / "protomux").is_dir(),
        reason="node and the pinned JS fixture (npm ci in tests/interop) are needed",
    ),
]


def _run_js(messages: list[bytes]) -> dict[str, Any]:
    assert NODE is not None
    out = subprocess.run(
        [NODE, str(HERE / "protomux_vectors.js"), *(m.hex() for m in messages)],
        cwd=HERE,
        capture_output=True,
        check=True,
        timeout=60,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _script(mux: Protomux) -> dict[str, Any]:
    """The same calls as protomux_vectors.js, in the same order."""
    a = mux.create_channel("vectors/a", bytes.fromhex("0102"))
    assert a is not None
    a.user_data = "a"
    mux.open(a, Writer().string("hi").getvalue())
    b = mux.create_channel("vectors/b")
    assert b is not None
    b.user_data = "b"
    mux.open(b)
    mux.send(a, 0, Writer().uint(300).getvalue())
    mux.send(a, 1, Writer().string("x").getvalue())
    mux.cork()
    mux.send(a, 0, Writer().uint(1).getvalue())
    mux.send(a, 0, Writer().uint(2).getvalue())
    mux.send(b, 0, bytes.fromhex("beef"))
    d = mux.create_channel("vectors/d")
    assert d is not None
    d.user_data = "d"
    mux.open(d)
    mux.send(a, 0, Writer().uint(3).getvalue())
    mux.uncork()
    mux.close(d)
    return {"a": a, "b": b, "d": d}


def _log(events: list[Any], mux: Protomux) -> list[list[Any]]:
    """Our events in the shape of the JS script's log."""
    log: list[list[Any]] = []
    for event in events:
        name = event.channel.user_data if hasattr(event, "channel") else None
        if isinstance(event, ChannelOpened):
            if name == "a":
                log.append(["open-a", Reader(event.handshake).string(100)])
            elif name == "b":
                log.append(["open-b"])
        elif isinstance(event, ChannelMessage):
            if name == "a" and event.type == 0:
                log.append(["a-uint", Reader(event.payload).uint()])
            elif name == "a" and event.type == 1:
                log.append(["a-str", Reader(event.payload).string(100)])
            elif name == "b" and event.type == 0:
                log.append(["b-raw", event.payload.hex()])
        elif isinstance(event, ChannelClosed) and name in ("a", "b"):
            log.append([f"close-{name}", event.remote])
        elif isinstance(event, BatchEnd):
            mux.uncork()
    return log


def _open(remote_id: int, protocol: str, id: bytes | None, handshake: bytes = b"") -> bytes:
    return bytes(
        Writer().uint(0).uint(1).uint(remote_id).string(protocol).buffer(id).raw(handshake)
    )


def _batch(*groups: tuple[int, list[bytes]]) -> bytes:
    w = Writer().uint(0).uint(0)
    for index, (channel, entries) in enumerate(groups):
        if index:
            w.uint(0)
        w.uint(channel)
        for entry in entries:
            w.buffer(entry)
    return bytes(w)


REMOTE: list[bytes] = [
    # The remote pairs vectors/a (its id 1) with a string handshake, then messages.
    _open(1, "vectors/a", bytes.fromhex("0102"), Writer().string("yo").getvalue()),
    bytes(Writer().uint(1).uint(0).uint(70000)),
    # An open of our closed vectors/d: JS frees that id then (and ignores it).
    _open(2, "vectors/d", None),
    # An open nobody pairs: rejected (reply: 00 02 03).
    _open(3, "vectors/nobody", b"\xaa"),
    # A batch over two channels and the control channel: messages, then a close of b's
    # remote side that never existed (ignored), and a reject of our vectors/b.
    _batch(
        (1, [bytes(Writer().uint(0).uint(5)), bytes(Writer().uint(1).string("two"))]),
        (0, [bytes(Writer().uint(3).uint(9)), bytes(Writer().uint(2).uint(2))]),
    ),
    # Messages to an unknown channel and of an unknown type: ignored.
    bytes(Writer().uint(40).uint(0).raw(b"zz")),
    bytes(Writer().uint(1).uint(7).raw(b"zz")),
    # The remote closes vectors/a.
    bytes(Writer().uint(0).uint(3).uint(1)),
]


def test_the_same_calls_write_the_same_bytes_and_decode_the_same() -> None:
    js = _run_js(REMOTE)
    assert not js["destroyed"], js["error"]
    ours = Protomux()
    _script(ours)
    assert [m.hex() for m in ours.messages_to_send()] == js["script"]
    log: list[list[Any]] = []
    for message in REMOTE:
        log += _log(ours.receive(message), ours)
    assert [m.hex() for m in ours.messages_to_send()] == js["replies"]
    assert log == js["log"]
    # The ids JS freed are free here too: the next channel gets the same local id.
    e = ours.create_channel("vectors/e")
    assert e is not None
    ours.open(e)
    assert e.local_id == js["nextLocalId"]


@pytest.mark.parametrize(
    "message",
    [
        _open(5, "vectors/a", None),  # skips an id: JS "Invalid open message"
        bytes(Writer().uint(0).uint(2).uint(9)),  # a reject of a channel never opened
    ],
)
def test_what_js_destroys_the_stream_for_we_refuse(message: bytes) -> None:
    from p2pswarm.errors import ChannelProtocolError

    js = _run_js([message])
    assert js["destroyed"]
    ours = Protomux()
    _script(ours)
    with pytest.raises(ChannelProtocolError):
        ours.receive(message)
