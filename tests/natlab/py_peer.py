"""The lab's peer program, p2pswarm's HyperDHT side (the contract is in ``peer.py``).

    python -m tests.natlab.py_peer --role=server --bootstrap=H:P,... --seed=HEX32 --timeout-ms=N
    python -m tests.natlab.py_peer --role=client --bootstrap=H:P,... --key=HEX32 --timeout-ms=N

The same JSON lines as ``js_peer.js``. A failed punch reports the hyperdht error code.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import anyio

from p2pswarm.connection import Connection
from p2pswarm.errors import P2PSwarmError
from p2pswarm.hyperdht import HyperDHT
from p2pswarm.keys import KeyPair

PING = b"natlab-ping"


def out(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def nat_info(dht: HyperDHT) -> dict[str, Any]:
    return {"firewalled": dht.firewalled, "randomized": dht.randomized}


def remote_of(connection: Connection) -> dict[str, Any]:
    host, port = connection.remote_address
    return {"host": host, "port": port}


async def server(dht: HyperDHT, seed: bytes) -> None:
    async def echo(connection: Connection) -> None:
        out({"event": "connection", "remote": remote_of(connection)})
        while True:
            data = await connection.receive()
            await connection.send(data)

    key_pair = KeyPair.from_seed(seed)
    srv = dht.create_server(echo)
    await srv.listen(key_pair)
    out({"event": "listening", "publicKey": key_pair.public_key.hex(), **nat_info(dht)})
    await anyio.sleep_forever()


async def client(dht: HyperDHT, key: bytes) -> None:
    started = time.monotonic()
    try:
        connection = await dht.connect(key)
        await connection.send(PING)
        got = b""
        while len(got) < len(PING):
            got += await connection.receive()
    except (P2PSwarmError, OSError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
        code = getattr(exc, "code", None) or type(exc).__name__
        out(
            {
                "event": "result",
                "connected": False,
                "error": code,
                "stack": str(exc)[:300],
                "ms": round((time.monotonic() - started) * 1000),
                **nat_info(dht),
            }
        )
        return
    ms = round((time.monotonic() - started) * 1000)
    out(
        {
            "event": "result",
            "connected": got == PING,
            "ms": ms,
            "remote": remote_of(connection),
            **nat_info(dht),
        }
    )
    await connection.aclose()


async def main(args: argparse.Namespace) -> None:
    bootstrap = [(h, int(p)) for h, p in (a.split(":") for a in args.bootstrap.split(","))]
    with anyio.move_on_after(args.timeout_ms / 1000):
        async with HyperDHT(bootstrap=bootstrap) as dht:
            await dht.fully_bootstrapped()
            if args.role == "server":
                await server(dht, bytes.fromhex(args.seed))
            else:
                await client(dht, bytes.fromhex(args.key))
            return
    if args.role == "client":
        out({"event": "result", "connected": False, "error": "timeout"})


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.natlab.py_peer")
    parser.add_argument("--role", choices=("server", "client"), required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--seed")
    parser.add_argument("--key")
    parser.add_argument("--timeout-ms", type=int, default=30_000)
    args = parser.parse_args(argv)
    try:
        anyio.run(main, args)
    except Exception as exc:
        out({"event": "error", "message": repr(exc)})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli())
