"""A key-value store whose keys live on the responsible peer.

``python examples/kv_store.py ROOM`` on a few machines (or terminals), then type::

    put colour blue
    get colour

Each key is stored on the one member of ROOM that rendezvous hashing makes responsible
for it (:mod:`p2pswarm.ownership`); ``put`` and ``get`` from any member run there over
:mod:`p2pswarm.rpc`. ``members`` lists who is in. Ctrl-D leaves (its keys go with it:
this example keeps no replicas).
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

import p2pswarm
from p2pswarm import Swarm
from p2pswarm.errors import P2PSwarmError
from p2pswarm.ownership import Ownership
from p2pswarm.rpc import RPC


def short(key: bytes) -> str:
    return key.hex()[:8]


async def main(room: str) -> None:
    topic = p2pswarm.topic(room)
    store: dict[bytes, Any] = {}
    async with Swarm() as swarm:
        owners = Ownership(swarm, topic, RPC(swarm))  # before joining

        @owners.action("put")
        def put(key: bytes, value: Any, caller: bytes) -> str:
            store[key] = value
            print(f"* stored {key.decode(errors='replace')!r} for {short(caller)}", flush=True)
            return short(swarm.key_pair.public_key)

        @owners.action("get")
        def get(key: bytes, value: Any, caller: bytes) -> Any:
            return store.get(key)

        swarm.join(topic)
        print(f"* you are {short(swarm.key_pair.public_key)} in {room!r}", flush=True)
        async with anyio.create_task_group() as tg:
            tg.start_soon(show_members, swarm, owners)
            await serve_stdin(owners)
            tg.cancel_scope.cancel()


async def show_members(swarm: Swarm, owners: Ownership) -> None:
    """Print ``* members: ...`` whenever the set of members changes (a peer joins the topic
    or its RPC channel opens or closes), woken by the swarm and the RPC, never polling."""
    wake = anyio.Event()

    def poke() -> None:
        wake.set()

    swarm.on_update(poke)
    owners.rpc.on_peers_changed(poke)
    shown: list[str] = []
    while True:
        members = sorted(map(short, owners.members()))
        if members != shown:
            shown = members
            print("* members: " + " ".join(members), flush=True)
        await wake.wait()
        wake = anyio.Event()


async def serve_stdin(owners: Ownership) -> None:
    stdin = anyio.wrap_file(sys.stdin)
    while line := await stdin.readline():
        words = line.strip().split(maxsplit=2)
        try:
            if words[:1] == ["put"] and len(words) == 3:
                where = await owners.call(words[1].encode(), "put", words[2])
                print(f"ok {words[1]} on {where}", flush=True)
            elif words[:1] == ["get"] and len(words) == 2:
                value = await owners.call(words[1].encode(), "get")
                owner = short(owners.responsible_peer(words[1].encode()))
                print(f"{words[1]} = {value} (from {owner})", flush=True)
            elif words[:1] == ["members"]:
                print("members: " + " ".join(sorted(map(short, owners.members()))), flush=True)
            elif words:
                print("usage: put KEY VALUE | get KEY | members", flush=True)
        except P2PSwarmError as exc:
            print(f"error: {exc}", flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "p2pswarm kv example")
