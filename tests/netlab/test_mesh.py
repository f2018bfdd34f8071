"""Across hosts: four network namespaces on one Ethernet, a DHT node on the first, and a
``p2pswarm chat`` on each; every one must meet the other three (a full mesh).

Real processes, each in its own namespace, talking only over the lab's private subnet.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.proc import Proc, Runner

from .kit import Host, Lab

pytestmark = pytest.mark.anyio

DHT_PORT = 49737


async def start_in(cli: Runner, host: Host, *args: str) -> Proc:
    """``python -m p2pswarm ARGS`` inside ``host``'s namespace."""
    ip, *rest = host.command([sys.executable, "-m", "p2pswarm", *args])
    return await cli.start(*rest, argv0=Path(ip), stdin=subprocess.PIPE)


async def test_a_mesh_across_four_hosts(lab4: Lab, cli: Runner) -> None:
    first = lab4.hosts[0]
    bootstrap = f"{first.address}:{DHT_PORT}"
    node = await start_in(cli, first, "dht-node", "--host", first.address, "--port", str(DHT_PORT))
    await node.wait_for(rf"listening on {first.address}:{DHT_PORT}")
    chats = []
    for host in lab4.hosts:
        chat = await start_in(
            cli, host, "chat", "mesh", "--json", "--bootstrap", bootstrap, "--host", host.address
        )
        chats.append(chat)
    keys = []
    for chat in chats:
        ready = json.loads((await chat.wait_for(r'\{"event":"ready".*\}', stream="stdout"))[0])
        keys.append(ready["public_key"])
    for chat, own in zip(chats, keys, strict=True):
        for other in keys:
            if other != own:
                await chat.wait_for(rf'"event":"join"[^\n]*"peer":"{other}"', stream="stdout")
    for chat in chats:
        await chat.close_stdin()
        assert await chat.wait_exit() == 0, chat.err
    assert "Traceback" not in node.err
