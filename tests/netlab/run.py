"""Processes inside lab hosts: a command in a host's namespace, run by the CLI tests' runner
(output collected, waited on by pattern, killed at the end)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio

from tests.cli.proc import Proc, Runner

from .kit import Host

__all__ = ("DHT_PORT", "start_in", "start_module_in")

DHT_PORT = 49737


async def start_in(cli: Runner, host: Host, *args: str) -> Proc:
    """``python -m p2pswarm ARGS`` inside ``host``'s namespace."""
    return await start_module_in(cli, host, "p2pswarm", *args)


async def start_module_in(cli: Runner, host: Host, module: str, *args: str) -> Proc:
    """``python -m MODULE ARGS`` inside ``host``'s namespace (``ip netns exec`` execs, so
    killing the process kills Python itself)."""
    ip, *rest = host.command([sys.executable, "-m", module, *args])
    return await cli.start(*rest, argv0=Path(ip), stdin=subprocess.PIPE)


# -- scenarios, shared by the tests (which check outcomes) and bench/faults.py (which times
# -- them); each waits on output lines, with the wait's bound as the only clock.


async def dht_node(cli: Runner, host: Host) -> tuple[Proc, str]:
    """A DHT node on ``host``; returns it and its ``HOST:PORT`` bootstrap string."""
    node = await start_in(cli, host, "dht-node", "--host", host.address, "--port", str(DHT_PORT))
    await node.wait_for(rf"listening on {host.address}:{DHT_PORT}")
    return node, f"{host.address}:{DHT_PORT}"


async def chat_mesh(
    cli: Runner, hosts: list[Host], bootstrap: str, topic: str, *, limit: float = 30.0
) -> tuple[list[Proc], list[str]]:
    """``p2pswarm chat TOPIC --json`` on each host; returns once each met all the others."""
    chats = [
        await start_in(
            cli, host, "chat", topic, "--json", "--bootstrap", bootstrap, "--host", host.address
        )
        for host in hosts
    ]
    keys = []
    for chat in chats:
        ready = await chat.wait_for(r'\{"event":"ready".*\}', stream="stdout", limit=limit)
        keys.append(json.loads(ready[0])["public_key"])
    for chat, own in zip(chats, keys, strict=True):
        for other in keys:
            if other != own:
                await chat.wait_for(
                    rf'"event":"join"[^\n]*"peer":"{other}"', stream="stdout", limit=limit
                )
    return chats, keys


async def start_receiver(
    cli: Runner, host: Host, bootstrap: str, inbox: Path, key: Path
) -> tuple[Proc, str]:
    """``p2pswarm receive`` on ``host``; returns it and its public key."""
    receiver = await start_in(
        cli, host, "receive", "--key", str(key), "--out-dir", str(inbox), "--json",
        "--bootstrap", bootstrap, "--host", host.address,
    )  # fmt: skip
    ready = await receiver.wait_for(
        r'"event":"receiving","time":[0-9.]+,"public_key":"(\w+)"', stream="stdout"
    )
    return receiver, ready[1]


async def start_sender(cli: Runner, host: Host, bootstrap: str, source: Path, peer: str) -> Proc:
    return await start_in(
        cli, host, "send", str(source), "--peer", peer, "--json",
        "--bootstrap", bootstrap, "--host", host.address,
    )  # fmt: skip


async def udx_transfer(
    cli: Runner,
    receiver: Host,
    sender: Host,
    source: Path,
    target: Path,
    *,
    drop: float = 0.0,
    delay: float = 0.0,
    limit: float = 120.0,
) -> str:
    """``source`` from ``sender`` to ``target`` on ``receiver`` over encrypted UDX
    (:mod:`tests.netlab.udx_peer`); returns the BLAKE2b-256 hex the receiver computed."""
    port = 40100
    faults = ["--drop", str(drop), "--delay", str(delay)]
    rx = await start_module_in(
        cli, receiver, "tests.netlab.udx_peer", "receive", "--host", receiver.address,
        "--port", str(port), "--to", f"{sender.address}:{port}", "--file", str(target),
        *faults, "--seed", "1",
    )  # fmt: skip
    await rx.wait_for("listening", stream="stdout")
    tx = await start_module_in(
        cli, sender, "tests.netlab.udx_peer", "send", "--host", sender.address,
        "--port", str(port), "--to", f"{receiver.address}:{port}", "--file", str(source),
        *faults, "--seed", "2",
    )  # fmt: skip
    got = await rx.wait_for(r"received (\d+) ([0-9a-f]{64})", stream="stdout", limit=limit)
    await tx.wait_for(r"sent \d+", stream="stdout", limit=limit)
    assert await rx.wait_exit() == 0, rx.err
    assert await tx.wait_exit() == 0, tx.err
    assert int(got[1]) == (await anyio.Path(source).stat()).st_size
    return got[2]
