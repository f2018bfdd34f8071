"""``p2pswarm join TOPIC``: netcat over a topic.

Every byte read from stdin goes to every connected peer; every byte from any peer goes to
stdout, unchanged (binary-safe). Reading stdin waits for the first peer, so
``echo hi | p2pswarm join t`` delivers ``hi`` to whoever joins ``t`` first rather than to
nobody. At stdin's end each peer gets an end-of-stream (later peers get it at once); the
command exits once stdin has ended, at least one peer came, and every peer has ended its
side too: both directions are then complete, as with ``nc -N``. Events go to stderr
(human, or JSON with ``--json``), since stdout carries the data.
"""

from __future__ import annotations

import argparse
import contextlib

import anyio

from ..connection import Connection
from ..swarm.peer_info import PeerInfo
from ._common import (
    EXIT_OK,
    Output,
    load_identity,
    open_swarm,
    parse_topic,
    short_id,
    stdin_chunks,
    wait_any,
    write_stdout,
)

__all__ = ("join",)

_PEER_GONE = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    OSError,
)


class _Pipe:
    """Who is connected, and whether every direction has finished."""

    def __init__(self) -> None:
        self.peers: set[Connection] = set()
        self.first_peer = anyio.Event()
        self.stdin_done = anyio.Event()
        self.finished = anyio.Event()
        self.reading = 0

    def check_finished(self) -> None:
        if self.stdin_done.is_set() and self.first_peer.is_set() and self.reading == 0:
            self.finished.set()


async def _send_eof(conn: Connection) -> None:
    with contextlib.suppress(*_PEER_GONE):
        await conn.send_eof()


async def join(args: argparse.Namespace, out: Output) -> int:
    topic = parse_topic(args.topic)
    key_pair = load_identity(args.key, out)
    pipe = _Pipe()
    async with open_swarm(args, out, key_pair) as swarm:

        @swarm.on_connection
        async def handle(conn: Connection, info: PeerInfo) -> None:
            peer = conn.remote_public_key
            out.event("join", f"* {short_id(peer)} connected", peer=peer.hex())
            pipe.peers.add(conn)
            pipe.reading += 1
            pipe.first_peer.set()
            if pipe.stdin_done.is_set():
                await _send_eof(conn)
            try:
                with contextlib.suppress(*_PEER_GONE):
                    async for chunk in conn:
                        await write_stdout(chunk)
                out.event("peer-eof", f"* {short_id(peer)} finished sending", peer=peer.hex())
                # Keep the connection until our side is done too, so stdin still reaches it.
                await pipe.stdin_done.wait()
            finally:
                pipe.peers.discard(conn)
                pipe.reading -= 1
                out.event("leave", f"* {short_id(peer)} left", peer=peer.hex())
                pipe.check_finished()

        swarm.join(topic, server=True, client=True)
        out.event("joined", f"joined topic {topic.hex()[:16]}…", topic=topic.hex())
        async with anyio.create_task_group() as tg:
            tg.start_soon(_pump_stdin, pipe)
            await wait_any(pipe.finished, out.stop)
            tg.cancel_scope.cancel()
    return EXIT_OK


async def _pump_stdin(pipe: _Pipe) -> None:
    chunks = stdin_chunks()
    await pipe.first_peer.wait()
    async with chunks:
        async for chunk in chunks:
            for conn in list(pipe.peers):
                with contextlib.suppress(*_PEER_GONE):
                    await conn.send(chunk)
    pipe.stdin_done.set()
    for conn in list(pipe.peers):
        await _send_eof(conn)
    pipe.check_finished()
