"""One end of a file transfer over an encrypted UDX connection, run inside a lab host.

    python -m tests.netlab.udx_peer receive|send --host H --port P --to H2:P2 \\
        [--file F] [--drop 0.05] [--delay 0.01] [--seed N]

Both ends know each other's address and stream id up front (the receiver's stream is 1,
the sender's 2), as the HyperDHT handshake would have told them. The secret stream runs
over the UDX stream, with the seeded fault hook on the socket. The receiver prints
``listening``, then ``received BYTES HASH`` (BLAKE2b-256 of what arrived) once the sender
ended; the sender prints ``sent BYTES`` once the receiver ended back. Exit 0 on success.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import anyio

from p2pswarm import KeyPair
from p2pswarm.connection import Connection
from p2pswarm.transports.udx import Faults, UDXStream, accept_udx, connect_udx, open_udx_socket

RECEIVER_ID, SENDER_ID = 1, 2
CHUNK = 65536
#: Bound on waiting for the final acks before the socket closes.
LINGER = 30.0


def say(line: str) -> None:
    print(line, flush=True)


async def receive(conn: Connection, out: Path) -> None:
    digest = hashlib.blake2b(digest_size=32)
    size = 0
    with out.open("wb") as sink:
        while True:
            try:
                data = await conn.receive(1 << 20)
            except anyio.EndOfStream:
                break
            sink.write(data)
            digest.update(data)
            size += len(data)
    await conn.send_eof()
    say(f"received {size} {digest.hexdigest()}")


async def send(conn: Connection, source: Path) -> None:
    size = 0
    with source.open("rb") as file:
        while chunk := file.read(CHUNK):
            await conn.send(chunk)
            size += len(chunk)
    await conn.send_eof()
    while True:  # the receiver's end says everything arrived
        try:
            await conn.receive()
        except anyio.EndOfStream:
            break
    say(f"sent {size}")


async def main(args: argparse.Namespace) -> None:
    faults = None
    if args.drop or args.delay:
        faults = Faults(seed=args.seed, drop=args.drop, delay=args.delay, jitter=args.delay / 4)
    host, _, port = args.to.rpartition(":")
    streams: list[UDXStream] = []
    async with open_udx_socket(args.host, args.port, faults=faults) as sock:
        if args.role == "receive":
            stream = sock.create_stream(RECEIVER_ID)
            streams.append(stream)
            stream.connect(SENDER_ID, host, int(port))
            say("listening")
            conn = await accept_udx(stream, key_pair=KeyPair.generate(), handshake_timeout=60)
            await receive(conn, args.file)
        else:
            conn = await connect_udx(
                sock,
                RECEIVER_ID,
                host,
                int(port),
                key_pair=KeyPair.generate(),
                local_id=SENDER_ID,
                handshake_timeout=60,
                on_stream=streams.append,
            )
            await send(conn, args.file)
        # Leaving the block destroys the socket's streams: first let our END be acked (on a
        # lossy link it may need resending), as a process would keep its socket open.
        with anyio.move_on_after(LINGER):
            await streams[0].wait_closed()
        await conn.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=("receive", "send"))
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--to", required=True, metavar="HOST:PORT")
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--drop", type=float, default=0.0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    anyio.run(main, parser.parse_args())
    sys.exit(0)
