"""The p2pswarm demo: two peers find each other by topic and talk, with nothing configured.

Run ``python examples/demo.py``. Two swarms (in this one process, for a self-contained
demo; two processes or two terminals behave the same) join the topic "p2pswarm demo" on
the embedded local network: the first one to start serves the machine's local bootstrap
on 127.0.0.1, the other joins it. They find each other, open one Noise-encrypted
connection, prove who they are by their public keys, exchange a message each way, and the
program exits by itself within seconds.
"""

from __future__ import annotations

import anyio

import p2pswarm
from p2pswarm import PeerInfo, Swarm
from p2pswarm.connection import Connection

TOPIC = p2pswarm.topic("p2pswarm demo")
#: Only a safety bound: on one machine the peers meet in well under a second.
DEADLINE = 20.0


def short(key: bytes) -> str:
    return key.hex()[:8]


async def run_peer(
    name: str, started: anyio.Event, done: anyio.Event, finished: anyio.Event
) -> None:
    async with Swarm() as swarm:
        me = short(swarm.key_pair.public_key)
        print(f"[{name}] I am {me}, listening on 127.0.0.1:{swarm.port}")

        @swarm.on_connection
        async def greet(conn: Connection, info: PeerInfo) -> None:
            them = short(conn.remote_public_key)
            role = "dialled" if conn.is_initiator else "accepted"
            print(
                f"[{name}] connected to {them} ({role}; encrypted, handshake "
                f"{conn.handshake_hash.hex()[:12]}…)"
            )
            await conn.send(f"hello from {name} ({me})".encode())
            message = await conn.receive()
            print(f"[{name}] {them} says: {message.decode()}")
            done.set()
            # Stay connected until both sides have their message.
            await finished.wait()

        discovery = swarm.join(TOPIC)
        await discovery.flushed()
        print(f"[{name}] announced on topic {TOPIC.hex()[:12]}… and looked for peers")
        started.set()
        await finished.wait()
    print(f"[{name}] left the swarm")


async def main() -> None:
    print("p2pswarm demo: two peers on the zero-config local network")
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tg:
            alice_done, bob_done, finished = anyio.Event(), anyio.Event(), anyio.Event()
            alice_started = anyio.Event()
            tg.start_soon(run_peer, "alice", alice_started, alice_done, finished)
            await alice_started.wait()
            tg.start_soon(run_peer, "bob", anyio.Event(), bob_done, finished)
            await alice_done.wait()
            await bob_done.wait()
            finished.set()  # both swarms now close normally
    print("both peers exchanged a message over an encrypted connection; done")


if __name__ == "__main__":
    anyio.run(main)
