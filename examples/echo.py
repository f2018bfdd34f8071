"""An encrypted echo between two keys on loopback, with no DHT: run ``python examples/echo.py``.

A listener with its own key pair echoes whatever it receives; a client dials it by address
and, knowing the listener's public key, uses the one-round-trip IK handshake. Both sides
print who they are talking to, proven by the handshake. The program exits by itself.
"""

from __future__ import annotations

import anyio

import p2pswarm
from p2pswarm import connect_tcp, create_tcp_listener
from p2pswarm.connection import Connection


def short(key: bytes) -> str:
    return key.hex()[:16] + "…"


async def echo(connection: Connection) -> None:
    print(f"server: connection from {short(connection.remote_public_key)}", end="")
    topics = ", ".join(t.hex()[:8] for t in connection.remote_topics) or "none"
    print(f" at {connection.remote_address[0]}:{connection.remote_address[1]} (topics: {topics})")
    try:
        while True:
            data = await connection.receive()
            print(f"server: echoing {data!r}")
            await connection.send(data)
    except anyio.EndOfStream:
        print("server: the client finished sending; closing")


async def main() -> None:
    server_keys = p2pswarm.KeyPair.generate()
    client_keys = p2pswarm.KeyPair.generate()
    room = p2pswarm.topic("echo example")
    print(f"server key {short(server_keys.public_key)}, client key {short(client_keys.public_key)}")

    listener = await create_tcp_listener(local_host="127.0.0.1", key_pair=server_keys)
    host, port = listener.local_address
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, echo)
        print(f"server: listening on {host}:{port}")

        connection = await connect_tcp(
            host,
            port,
            key_pair=client_keys,
            remote_public_key=server_keys.public_key,
            topics=(room,),
        )
        async with connection:
            assert connection.remote_public_key == server_keys.public_key
            print(f"client: connected to {short(connection.remote_public_key)}")
            print(f"client: handshake hash {connection.handshake_hash.hex()[:16]}…")
            for message in (b"hello", b"encrypted", b"world"):
                await connection.send(message)
                reply = await connection.receive()
                print(f"client: sent {message!r}, got back {reply!r}")
            await connection.send_eof()
            try:
                await connection.receive()
            except anyio.EndOfStream:
                print("client: the server closed the stream; done")
        group.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main)
