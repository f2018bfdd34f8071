"""Keep two folders in sync over a topic: ``python examples/file_sync.py FOLDER TOPIC``.

Run it on two folders (on one machine, or on two with ``P2PSWARM_BOOTSTRAP``): when the
peers meet, each sends the other a manifest (file name, size, BLAKE2b-256), then sends
every file the other lacks. Received files are checked against the manifest's hash and
moved into place atomically. Files present on both sides with different content are left
alone and reported (a real tool would need a conflict policy). ``--once`` exits after the
first peer is synced, which is what the tests use.

Flat folders only (no subfolders). The wire format is length-prefixed JSON headers, each
followed by the raw bytes they announce; every length and name is checked before use,
because the peer is only a peer, not a friend.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream

import p2pswarm
from p2pswarm import PeerInfo, Swarm
from p2pswarm.connection import Connection

MAX_HEADER = 1 << 20
MAX_FILE = 256 << 20
LENGTH = struct.Struct("!I")


def digest(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=32).hexdigest()


def manifest(folder: Path) -> dict[str, list[Any]]:
    return {
        p.name: [p.stat().st_size, digest(p)]
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".")
    }


def safe_name(name: object) -> str:
    if (
        not isinstance(name, str)
        or not 0 < len(name.encode()) <= 255
        or name.startswith(".")
        or any(c in name for c in "/\\\x00")
        or not name.isprintable()
    ):
        raise ValueError(f"unsafe file name from peer: {name!r}")
    return name


async def send_header(conn: Connection, header: dict[str, Any]) -> None:
    body = json.dumps(header).encode()
    await conn.send(LENGTH.pack(len(body)) + body)


async def read_header(reader: BufferedByteReceiveStream) -> dict[str, Any]:
    (length,) = LENGTH.unpack(await reader.receive_exactly(LENGTH.size))
    if length > MAX_HEADER:
        raise ValueError(f"header of {length} bytes from peer")
    header = json.loads(await reader.receive_exactly(length))
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    return header


async def sync(conn: Connection, folder: Path) -> None:
    who = conn.remote_public_key.hex()[:8]
    reader = BufferedByteReceiveStream(conn)
    mine = manifest(folder)
    await send_header(conn, {"manifest": mine})
    theirs = (await read_header(reader)).get("manifest")
    if not isinstance(theirs, dict):
        raise ValueError("bad manifest")
    for name in theirs:
        safe_name(name)
        if name in mine and mine[name][1] != theirs[name][1]:
            print(f"{folder.name}: {name} differs from {who}'s; left alone", flush=True)

    async def send_missing() -> None:
        for name, (size, _) in mine.items():
            if name not in theirs:
                await send_header(conn, {"file": name, "size": size})
                await conn.send((folder / name).read_bytes())
        await send_header(conn, {"done": True})

    async with anyio.create_task_group() as tg:
        tg.start_soon(send_missing)
        while "done" not in (header := await read_header(reader)):
            name, size = safe_name(header.get("file")), header.get("size")
            if name not in theirs or not isinstance(size, int) or not 0 <= size <= MAX_FILE:
                raise ValueError(f"unannounced or oversized file {name!r}")
            data = await reader.receive_exactly(size) if size else b""
            if hashlib.blake2b(data, digest_size=32).hexdigest() != theirs[name][1]:
                raise ValueError(f"{name}: content does not match the manifest")
            tmp = folder / f".{name}.sync"
            tmp.write_bytes(data)
            os.replace(tmp, folder / name)
            print(f"{folder.name}: got {name} ({size} bytes) from {who}", flush=True)
    print(f"{folder.name}: in sync with {who}", flush=True)


async def main(folder: Path, topic_name: str, once: bool) -> None:
    synced = anyio.Event()
    async with Swarm() as swarm:

        @swarm.on_connection
        async def on_peer(conn: Connection, info: PeerInfo) -> None:
            await sync(conn, folder)
            synced.set()
            if once:
                return
            await anyio.sleep_forever()  # stay connected; the peer may still be reading

        swarm.join(p2pswarm.topic(topic_name))
        print(f"{folder.name}: sharing {len(manifest(folder))} files on {topic_name!r}", flush=True)
        if once:
            await synced.wait()
        else:
            await anyio.sleep_forever()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--once"]
    if len(args) != 2 or not Path(args[0]).is_dir():
        sys.exit("usage: file_sync.py FOLDER TOPIC [--once]")
    anyio.run(main, Path(args[0]), args[1], "--once" in sys.argv)
