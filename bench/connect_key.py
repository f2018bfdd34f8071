"""Connect by key on a 10-node testnet: Python against JS, one JSON line per run.

Each run: ``--nodes`` DHT nodes on 127.0.0.1, an echo server announced by key on its own
node, and a client node on the same network that connects ``--iterations`` times (after
``--warmup``), each time to a fresh connection:

- ``connect_ms``: from the connect call to the stream being open (Python: ``dht.connect``
  returned, our header sent; JS: the secret stream's ``open`` event, the peer's header in);
- ``echo_ms``: from the connect call to the first echoed message back (the same moment on
  both sides: the comparable figure).

``--impl python``: our nodes, server and client. ``--impl js``: real JS HyperDHT
(``tests/interop/hyperdht_node.js``: one process for the testnet and the server, one for
the client). ``--impl all`` (default) runs both in turn.

Usage: python bench/connect_key.py [--impl all|python|js] [--nodes 10] [--iterations 20]
                                   [--warmup 2] [--backend asyncio|trio]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from _common import HOST, add_backend_argument, emit, now_ms, summary, versions
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from p2pswarm.connection import Connection
from p2pswarm.hyperdht import create_testnet
from p2pswarm.keys import KeyPair

HERE = Path(__file__).resolve().parent
JS_NODE = HERE.parent / "tests" / "interop" / "hyperdht_node.js"
SEED = bytes(range(32))
MESSAGE = b"ping"


async def echo(connection: Connection) -> None:
    with contextlib.suppress(
        anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError
    ):
        while True:
            await connection.send(await connection.receive())


async def run_python(args: argparse.Namespace) -> dict[str, Any]:
    connect_ms: list[float] = []
    echo_ms: list[float] = []
    async with create_testnet(args.nodes, host=HOST) as testnet:
        server_node = await testnet.create_node()
        server = server_node.create_server(echo)
        await server.listen(KeyPair.from_seed(SEED))
        client = await testnet.create_node()
        for i in range(args.warmup + args.iterations):
            start = now_ms()
            connection = await client.connect(server.public_key)  # type: ignore[arg-type]
            opened = now_ms()
            async with connection:
                await connection.send(MESSAGE)
                await connection.receive()
                done = now_ms()
            if i >= args.warmup:
                connect_ms.append(opened - start)
                echo_ms.append(done - start)
        await server.aclose()
    return {"connect_ms": summary(connect_ms), "echo_ms": summary(echo_ms)}


class JsProcess:
    def __init__(self, process: Process) -> None:
        assert process.stdout is not None
        self.process = process
        self.lines = BufferedByteReceiveStream(process.stdout)
        self.ids = 0

    async def next(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await self.lines.receive_until(b"\n", 1 << 22))
        if message.get("event") == "error":
            raise RuntimeError(str(message.get("message")))
        return message

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.ids += 1
        await self.process.stdin.send(
            (json.dumps({"id": self.ids, "op": op, **args}) + "\n").encode()
        )
        with anyio.fail_after(60):
            answer = await self.next()
        if not answer.get("ok"):
            raise RuntimeError(f"{op}: {answer.get('error')}")
        return answer


@contextlib.asynccontextmanager
async def js_process(*options: str) -> AsyncIterator[tuple[JsProcess, dict[str, Any]]]:
    node = shutil.which("node")
    assert node is not None, "node is not installed"
    command = [node, str(JS_NODE), "--timeout-ms=600000", "--client", *options]
    process = await anyio.open_process(command, cwd=JS_NODE.parent, stderr=None)
    try:
        js = JsProcess(process)
        with anyio.fail_after(60):
            ready = await js.next()
        yield js, ready
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            await process.aclose()


async def run_js(args: argparse.Namespace) -> dict[str, Any]:
    connect_ms: list[float] = []
    echo_ms: list[float] = []
    async with js_process(f"--testnet={args.nodes}") as (server, ready):
        public_key = (await server.call("listen", seed=SEED.hex()))["publicKey"]
        bootstrap = ",".join(f"{a['host']}:{a['port']}" for a in ready["bootstrap"])
        async with js_process(f"--bootstrap={bootstrap}") as (client, _):
            for i in range(args.warmup + args.iterations):
                answer = await client.call(
                    "connect", publicKey=public_key, seed=bytes(32).hex(), message=MESSAGE.hex()
                )
                if i >= args.warmup:
                    connect_ms.append(answer["openMs"])
                    echo_ms.append(answer["echoMs"])
    return {"connect_ms": summary(connect_ms), "echo_ms": summary(echo_ms)}


async def main(args: argparse.Namespace) -> None:
    impls = ["python", "js"] if args.impl == "all" else [args.impl]
    for impl in impls:
        result = await (run_python(args) if impl == "python" else run_js(args))
        emit(
            {
                "bench": "connect_key",
                "impl": impl,
                "nodes": args.nodes,
                "iterations": args.iterations,
                **result,
                **versions(),
            }
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=["all", "python", "js"], default="all")
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    add_backend_argument(parser)
    arguments = parser.parse_args()
    anyio.run(main, arguments, backend=arguments.backend)
