"""A pipe between processes that share a topic: ``python examples/pipe.py TOPIC``.

The first side to be given data sends its stdin to the first peer it meets and closes its
end; the other side writes what arrives to stdout and exits when the sender is done:

    python examples/pipe.py my-pipe > received.bin        # terminal 1
    python examples/pipe.py my-pipe < some-file.bin       # terminal 2

Both ends run the same code: each sends its stdin (possibly empty) and prints what it
receives, so the pipe also works both ways at once.
"""

from __future__ import annotations

import sys

import anyio

import p2pswarm
from p2pswarm import PeerInfo, Swarm
from p2pswarm.connection import Connection


async def main(name: str) -> None:
    done = anyio.Event()
    async with Swarm() as swarm:

        @swarm.on_connection
        async def on_peer(conn: Connection, info: PeerInfo) -> None:
            if done.is_set():
                return
            async with anyio.create_task_group() as tg:
                tg.start_soon(_send_stdin, conn)
                stdout = anyio.wrap_file(sys.stdout.buffer)
                async for chunk in conn:  # ends when the peer has sent everything
                    await stdout.write(chunk)
                await stdout.flush()
            done.set()

        swarm.join(p2pswarm.topic(name))
        await done.wait()


async def _send_stdin(conn: Connection) -> None:
    stdin = anyio.wrap_file(sys.stdin.buffer)
    while chunk := await stdin.read(65536):
        await conn.send(chunk)
    await conn.send_eof()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "p2pswarm pipe example")
