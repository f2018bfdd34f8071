"""An RPC service found by topic: ``p2pswarm.rpc`` over protomux channels.

    python examples/rpc_service.py serve NAME        # serves "add" and "stats" on topic NAME
    python examples/rpc_service.py call NAME A B     # finds a server of NAME, asks A + B

The server announces the topic and answers requests from any peer that finds it; the
client looks the topic up, waits for a server's request channel, calls ``add`` (a plain
function) and ``stats`` (an async one), shows what a refused request looks like (an unknown
method comes back as a typed ``RemoteError``), and exits. Run several servers: the
client's requests go to the least busy good one.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

from p2pswarm import Swarm, topic
from p2pswarm.errors import RemoteError
from p2pswarm.rpc import RPC, RPCPeer


async def serve(name: str) -> None:
    async with Swarm() as swarm:
        rpc = RPC(swarm)  # before join: every connection gets the request channel
        served = 0

        @rpc.handle("add")
        def add(payload: Any, peer: RPCPeer) -> Any:
            nonlocal served
            served += 1
            if not isinstance(payload, list) or not all(isinstance(x, int) for x in payload):
                raise RemoteError("bad-arguments", "add takes a list of integers")
            return sum(payload)

        @rpc.handle("stats")
        async def stats(payload: Any, peer: RPCPeer) -> Any:
            return {"served": served, "peers": len(rpc.peers)}

        await swarm.join(topic(name), client=False).flushed()
        print(f"server: serving {name!r} as {swarm.key_pair.public_key.hex()[:8]}", flush=True)
        await anyio.sleep_forever()


async def call(name: str, a: int, b: int) -> None:
    async with Swarm() as swarm:
        rpc = RPC(swarm)
        swarm.join(topic(name), server=False)
        with anyio.fail_after(30):
            await rpc.wait_for_peers(1)
            total = await rpc.request("add", [a, b], timeout=5)
            print(f"client: {a} + {b} = {total}", flush=True)
            print(f"client: server stats {await rpc.request('stats')}", flush=True)
            try:
                await rpc.request("subtract", [a, b])
            except RemoteError as error:
                print(f"client: refused as expected: {error.code}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        anyio.run(serve, sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "call":
        anyio.run(call, sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("usage: rpc_service.py serve NAME | rpc_service.py call NAME A B")
