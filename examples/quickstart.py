"""The README's quick start: run it in two terminals and the two copies greet each other.

Nothing is configured: with no bootstrap, a Swarm joins the machine's embedded local
network. Each copy prints the other's greeting and keeps running until Ctrl-C.
"""

import anyio

import p2pswarm


async def main() -> None:
    async with p2pswarm.Swarm() as swarm:
        me = swarm.key_pair.public_key.hex()[:8]

        @swarm.on_connection
        async def greet(conn: p2pswarm.Connection, peer: p2pswarm.PeerInfo) -> None:
            await conn.send(f"hello from {me}".encode())
            print(await conn.receive(), flush=True)  # b'hello from <the other one>'
            await conn.wait_closed()  # stay connected until the other side leaves

        await swarm.join(p2pswarm.topic("my-room")).flushed()
        print(f"{me} joined my-room", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main)
