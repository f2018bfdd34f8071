"""Across hosts: four network namespaces on one Ethernet, a DHT node on the first, and a
``p2pswarm chat`` on each; every one must meet the other three (a full mesh).

Real processes, each in its own namespace, talking only over the lab's private subnet.
"""

from __future__ import annotations

import json

import pytest

from tests.cli.proc import Runner

from .kit import Lab
from .run import DHT_PORT, start_in

pytestmark = pytest.mark.anyio


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
