"""A line chat on a topic: ``python examples/chat.py ROOM`` in two terminals.

Every line you type goes to everyone in ROOM; what others type appears prefixed with their
short id. Ctrl-D (end of input) leaves. Runs on the zero-config local network unless
``P2PSWARM_BOOTSTRAP`` names DHT nodes.
"""

from __future__ import annotations

import contextlib
import sys

import anyio

import p2pswarm
from p2pswarm import PeerInfo, Swarm
from p2pswarm.connection import Connection


def short(key: bytes) -> str:
    return key.hex()[:8]


async def main(room: str) -> None:
    peers: set[Connection] = set()
    async with Swarm() as swarm:

        @swarm.on_connection
        async def on_peer(conn: Connection, info: PeerInfo) -> None:
            who = short(conn.remote_public_key)
            peers.add(conn)
            print(f"* {who} joined", file=sys.stderr, flush=True)
            buffer = b""
            try:
                async for chunk in conn:
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        text = line.decode("utf-8", "replace")
                        print(f"[{who}] {text}", flush=True)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
            finally:
                peers.discard(conn)
                print(f"* {who} left", file=sys.stderr, flush=True)

        swarm.join(p2pswarm.topic(room))
        print(
            f"* you are {short(swarm.key_pair.public_key)} in {room!r}", file=sys.stderr, flush=True
        )
        stdin = anyio.wrap_file(sys.stdin.buffer)
        while line := await stdin.readline():
            for conn in list(peers):
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await conn.send(line if line.endswith(b"\n") else line + b"\n")


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "p2pswarm chat example")
