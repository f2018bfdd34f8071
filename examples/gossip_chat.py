"""A chat over gossip: ``python examples/gossip_chat.py ROOM [MAX_PEERS]`` in a few terminals.

Each line you type is broadcast with :class:`p2pswarm.gossip.Gossip`: it reaches everyone
in ROOM even when you are not connected to them, because every peer forwards it once to
its other neighbours (give a small MAX_PEERS, e.g. 2, to see a partial mesh carry it).
Each peer shows its name through node info. Ctrl-D leaves.
"""

from __future__ import annotations

import sys

import anyio

import p2pswarm
from p2pswarm import PeerInfo, Swarm
from p2pswarm.gossip import Gossip, GossipMessage


def short(key: bytes) -> str:
    return key.hex()[:8]


async def main(room: str, max_peers: int) -> None:
    topic = p2pswarm.topic(room)
    async with Swarm(max_peers=max_peers) as swarm:
        me = short(swarm.key_pair.public_key)
        swarm.set_info({"name": f"user-{me}"})
        gossip = Gossip(swarm, topic)  # before joining: every connection gets the channel

        @gossip.on_message
        def show(message: GossipMessage) -> None:
            text = message.payload.decode("utf-8", "replace")
            print(f"[{short(message.origin)}] {text}", flush=True)

        @swarm.on_info
        def joined(peer: PeerInfo, info: dict[str, object]) -> None:
            print(
                f"* neighbour {info.get('name', short(peer.public_key))}",
                file=sys.stderr,
                flush=True,
            )

        async def count_neighbours() -> None:
            for n in range(1, max_peers + 1):
                await gossip.wait_neighbours(n)
                print(f"* {n} gossip neighbours", file=sys.stderr, flush=True)

        swarm.join(topic)
        print(f"* you are {me} in {room!r}", file=sys.stderr, flush=True)
        async with anyio.create_task_group() as tg:
            tg.start_soon(count_neighbours)
            stdin = anyio.wrap_file(sys.stdin.buffer)
            while line := await stdin.readline():
                await gossip.broadcast(line.rstrip(b"\n"))
            tg.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(
        main,
        sys.argv[1] if len(sys.argv) > 1 else "p2pswarm gossip chat",
        int(sys.argv[2]) if len(sys.argv) > 2 else 64,
    )
