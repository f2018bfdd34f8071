"""Our Mux and the real JS protomux over a real secret stream (TCP on 127.0.0.1).

``js_protomux_peer.js`` listens; we dial. Channels are opened from both sides and paired
on protocol + id (JS pairs ``echo`` lazily through ``mux.pair``), typed messages flow both
ways, a corked batch of ours is decoded by JS (and its replies come back batched), a corked
batch of JS's is decoded here, each side rejects the channel it does not know, and closes
from either side reach the other.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from p2pswarm import connect_tcp
from p2pswarm.mux import STRING, UINT, Mux

from ._js import HERE, NODE_MODULES

pytestmark = [
    pytest.mark.interop,
    pytest.mark.anyio,
    pytest.mark.skipif(
        shutil.which("node") is None or not (NODE_MODULES / "protomux").is_dir(),
        reason="node and the pinned JS fixture (npm ci in tests/interop) are needed",
    ),
]

TIMEOUT = 30


class JsMuxPeer:
    def __init__(self, process: anyio.abc.Process) -> None:
        assert process.stdout is not None
        self.process = process
        self.lines = BufferedByteReceiveStream(process.stdout)

    async def next(self) -> dict[str, Any]:
        line = await self.lines.receive_until(b"\n", 1 << 20)
        message: dict[str, Any] = json.loads(line)
        assert message.get("event") != "error", message
        return message


@asynccontextmanager
async def js_mux_peer(*args: str) -> AsyncIterator[JsMuxPeer]:
    node = shutil.which("node")
    assert node is not None
    process = await anyio.open_process(
        [node, str(HERE / "js_protomux_peer.js"), *args], stdin=None, stderr=None, cwd=HERE
    )
    try:
        yield JsMuxPeer(process)
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            await process.aclose()


async def test_channels_messages_batches_rejects_and_closes_with_js_protomux() -> None:
    async with js_mux_peer() as js:
        with anyio.fail_after(TIMEOUT):
            port = int((await js.next())["port"])
            conn = await connect_tcp("127.0.0.1", port)
        async with conn:
            mux = Mux(conn)
            from_js = mux.create_channel("from-js", b"\x01", handshake=STRING, messages=[UINT])
            echo_a = mux.create_channel("echo", b"\xee", handshake=STRING, messages=[UINT, STRING])
            echo_b = mux.create_channel("echo", b"\xef", handshake=STRING, messages=[UINT, STRING])
            nobody = mux.create_channel("nobody-in-js")
            assert from_js and echo_a and echo_b and nobody
            from_js.open("py-hs")
            echo_a.open("py-a")
            echo_b.open("py-b")
            nobody.open()
            async with anyio.create_task_group() as tg:
                tg.start_soon(mux.run)
                with anyio.fail_after(TIMEOUT):
                    assert not await nobody.fully_opened()  # JS rejected it
                    assert nobody.closed_by_remote is True
                    assert await echo_a.fully_opened() and await echo_b.fully_opened()
                    assert echo_a.handshake == "js:ee" and echo_b.handshake == "js:ef"
                    assert await from_js.fully_opened() and from_js.handshake == "js-hs"
                    # JS's corked batch, decoded here.
                    assert [await from_js.messages[0].receive() for _ in range(3)] == [10, 20, 30]
                    # Our corked batch over two channels, decoded by JS; answers per channel.
                    with mux.corked():
                        for n in (1, 2, 3):
                            echo_a.messages[0].send_nowait(n)
                        echo_b.messages[0].send_nowait(100)
                        echo_b.messages[0].send_nowait(2**40)
                    assert [await echo_a.messages[0].receive() for _ in range(3)] == [2, 3, 4]
                    assert await echo_b.messages[0].receive() == 101
                    assert await echo_b.messages[0].receive() == 2**40 + 1
                    # JS closes echo ef when told; we close echo ee.
                    await echo_b.messages[1].send("close")
                    await echo_b.wait_closed()
                    assert echo_b.closed_by_remote is True
                    echo_a.close()
                    await from_js.messages[0].send(7)
                    from_js.close()
                    result = await js.next()
                tg.cancel_scope.cancel()
    log = [tuple(entry) for entry in result["log"]]
    assert ("js-only-close", True) in log  # we rejected JS's unpaired channel
    assert ("js-only-open",) not in log
    assert ("echo-open", "ee", "py-a") in log and ("echo-open", "ef", "py-b") in log
    assert ("from-js-open", "py-hs") in log
    assert [e for e in log if e[0] == "echo-uint"] == [
        ("echo-uint", n) for n in (1, 2, 3, 100, 2**40)
    ]
    assert ("echo-string", "close") in log
    assert ("echo-close", "ef", False) in log  # JS closed it itself
    assert ("echo-close", "ee", True) in log  # we closed it
    assert log.index(("from-js-uint", 7)) < log.index(("from-js-close", True))
    assert not [e for e in log if e[0] == "stream-error"]
