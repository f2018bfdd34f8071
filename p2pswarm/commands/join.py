"""``p2pswarm join TOPIC``: netcat over a topic.

Every byte read from stdin goes to every connected peer; every byte from any peer goes to
stdout, unchanged (binary-safe). Reading stdin waits for the first peer, so
``echo hi | p2pswarm join t`` delivers ``hi`` to whoever joins ``t`` first rather than to
nobody. Events go to stderr (human, or JSON with ``--json``), since stdout carries the data.

When it ends, so that the common pipes finish by themselves:

* At stdin's end each peer gets an end-of-stream (later peers get it at once).
* A peer's end of stream ends our side towards that peer too when stdin is a terminal
  (hyperbeam's rule: the remote's end ends ours; nobody types an end for a file
  transfer). When stdin is a file or a pipe, our side ends with it instead, so nothing
  read from it is cut short.
* A peer whose connection is lost (not ended) is gone: nothing more goes to it.
* The command exits once at least one peer came, every peer is gone or has ended both
  ways, and stdin has ended (or is a terminal).

So ``join t < file`` and ``join t > out`` in a terminal both exit once the file has
arrived; two ``join t < file`` exchange both files, as ``nc -N`` does; and in two
terminals Ctrl-D in one ends both.
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
    report_joined,
    short_id,
    stdin_chunks,
    stdin_is_terminal,
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

    def __init__(self, *, interactive: bool) -> None:
        #: Stdin is a terminal: a peer's end ends our side towards it.
        self.interactive = interactive
        #: Every connected peer, with the event set once our side towards it has ended.
        self.peers: dict[Connection, anyio.Event] = {}
        self.first_peer = anyio.Event()
        self.stdin_done = anyio.Event()
        self.finished = anyio.Event()

    def check_finished(self) -> None:
        if (
            (self.stdin_done.is_set() or self.interactive)
            and self.first_peer.is_set()
            and not self.peers
        ):
            self.finished.set()


async def _send_eof(conn: Connection, ours_ended: anyio.Event) -> None:
    ours_ended.set()
    with contextlib.suppress(*_PEER_GONE):
        await conn.send_eof()


async def join(args: argparse.Namespace, out: Output) -> int:
    topic = parse_topic(args.topic)
    key_pair = load_identity(args.key, out)
    pipe = _Pipe(interactive=stdin_is_terminal())
    async with open_swarm(args, out, key_pair) as swarm:

        @swarm.on_connection
        async def handle(conn: Connection, info: PeerInfo) -> None:
            peer = conn.remote_public_key
            out.event("join", f"* {short_id(peer)} connected", peer=peer.hex())
            ours_ended = pipe.peers[conn] = anyio.Event()
            pipe.first_peer.set()
            try:
                if pipe.stdin_done.is_set():
                    await _send_eof(conn, ours_ended)
                try:
                    async for chunk in conn:
                        await write_stdout(chunk)
                except _PEER_GONE:
                    return  # lost: nothing more can reach it
                out.event("peer-eof", f"* {short_id(peer)} finished sending", peer=peer.hex())
                if pipe.interactive:
                    await _send_eof(conn, ours_ended)  # the remote's end ends ours
                # Otherwise keep the connection until stdin is done, so all of it arrives.
                await ours_ended.wait()
            finally:
                pipe.peers.pop(conn, None)
                out.event("leave", f"* {short_id(peer)} left", peer=peer.hex())
                pipe.check_finished()

        swarm.join(topic, server=True, client=True)
        report_joined(out, swarm, topic, f"joined topic {topic.hex()[:16]}…")
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
            for conn, ours_ended in list(pipe.peers.items()):
                if not ours_ended.is_set():
                    with contextlib.suppress(*_PEER_GONE):
                        await conn.send(chunk)
    pipe.stdin_done.set()
    for conn, ours_ended in list(pipe.peers.items()):
        if not ours_ended.is_set():
            await _send_eof(conn, ours_ended)
    pipe.check_finished()
