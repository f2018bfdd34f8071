"""A direct link to one peer by its public key, with no topic: ``swarm.join_peer(key)``.

    python examples/join_peer.py serve               # prints its public key, answers
    python examples/join_peer.py connect KEY         # dials that key, says hello, exits

The server makes itself findable by its key (``swarm.listen()``) and replies to every
message in upper case. The client keeps a connection to the key (redialled if it drops),
sends one message, prints the reply and exits. Only the holder of the matching secret
key can complete the handshake, so the client knows whom it is talking to.
"""

from __future__ import annotations

import sys

import anyio

from p2pswarm import PeerInfo, Swarm
from p2pswarm.connection import Connection


async def serve() -> None:
    async with Swarm() as swarm:

        @swarm.on_connection
        async def answer(conn: Connection, info: PeerInfo) -> None:
            print(f"server: {conn.remote_public_key.hex()[:8]} connected", flush=True)
            async for message in conn:
                await conn.send(message.upper())

        await swarm.listen()
        print(f"server: my key is {swarm.key_pair.public_key.hex()}", flush=True)
        await anyio.sleep_forever()


async def connect(key_hex: str) -> None:
    key = bytes.fromhex(key_hex)
    got_reply = anyio.Event()
    async with Swarm() as swarm:

        @swarm.on_connection
        async def talk(conn: Connection, info: PeerInfo) -> None:
            assert conn.remote_public_key == key  # proven by the handshake
            await conn.send(b"hello over a direct link")
            reply = await conn.receive()
            print(f"client: {key_hex[:8]} replied {reply.decode()!r}", flush=True)
            got_reply.set()

        swarm.join_peer(key)
        await got_reply.wait()


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "serve":
        anyio.run(serve)
    elif len(sys.argv) == 3 and sys.argv[1] == "connect":
        anyio.run(connect, sys.argv[2])
    else:
        sys.exit("usage: join_peer.py serve | join_peer.py connect PUBLIC_KEY")
