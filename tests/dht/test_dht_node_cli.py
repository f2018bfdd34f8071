"""``python -m p2pswarm dht-node`` as a real subprocess: start, serve, stop on SIGINT."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream

from p2pswarm.dht import DHTNode, load_routing_state
from p2pswarm.keys import KeyPair, topic

pytestmark = pytest.mark.anyio

LISTENING = re.compile(r"dht-node listening on (\S+):(\d+) \(id ([0-9a-f]{40})\)")


async def wait_for_address(process: Process) -> tuple[tuple[str, int], str]:
    assert process.stdout is not None  # stderr is merged into it
    seen = ""
    with anyio.fail_after(20):
        async for chunk in TextReceiveStream(process.stdout):
            seen += chunk
            match = LISTENING.search(seen)
            if match:
                return (match[1], int(match[2])), match[3]
    raise AssertionError(f"dht-node never logged its address: {seen!r}")


async def stop(process: Process) -> int:
    process.send_signal(signal.SIGINT)
    with anyio.fail_after(20):
        return await process.wait()


async def test_dht_node_serves_until_interrupted(tmp_path: Path) -> None:
    state = tmp_path / "node.json"
    command = [sys.executable, "-m", "p2pswarm", "dht-node", "--port", "0", "--state", str(state)]
    async with await anyio.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as process:
        try:
            address, node_id = await wait_for_address(process)
            assert address[0] == "127.0.0.1"
            t = topic("cli")
            key_pair = KeyPair.generate()
            async with DHTNode(bootstrap=[address]) as client:
                reply = await client.ping(address)
                assert reply.node_id is not None and reply.node_id.hex() == node_id
                await client.announce(t, key_pair, 8080)
                async with client.lookup(t) as found:
                    assert [r.public_key async for r in found] == [key_pair.public_key]
            assert await stop(process) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert load_routing_state(state).node_id.hex() == node_id


def test_bad_arguments_exit_with_usage() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "p2pswarm", "dht-node", "--bootstrap", "nonsense"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "HOST:PORT" in result.stderr + result.stdout
