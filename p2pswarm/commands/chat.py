"""``p2pswarm chat TOPIC``: a line chat with everyone on a topic.

Each line typed is sent to every peer; each line received is printed on stdout as
``[a1b2c3d4] text``, the sender's short id first. Joins and leaves are printed on stderr.
End of input (Ctrl-D) leaves the chat. With ``--json`` everything is an event on stdout.

On the wire a message is UTF-8 text ended by a newline. A peer's lines are bounded
(:data:`MAX_LINE` bytes; a longer one drops that peer) and control characters in them are
shown escaped, so a peer cannot move the cursor or recolour the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Final

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
)

__all__ = ("MAX_LINE", "LineSplitter", "chat", "printable")

#: The longest line a peer may send, newline excluded.
MAX_LINE: Final = 4096

_PEER_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError)


class LineTooLongError(Exception):
    """A peer sent more than :data:`MAX_LINE` bytes without a newline."""


class LineSplitter:
    """Bytes in, complete lines out, with the pending partial line bounded."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._max = max_line
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        lines = [bytes(line) for line in self._buffer.split(b"\n")]
        self._buffer = bytearray(lines.pop())
        if len(self._buffer) > self._max or any(len(line) > self._max for line in lines):
            raise LineTooLongError(f"a line longer than {self._max} bytes")
        return [line.rstrip(b"\r") for line in lines]

    def rest(self) -> bytes:
        """The unterminated last line (at the end of the stream)."""
        rest, self._buffer = bytes(self._buffer), bytearray()
        return rest


def printable(data: bytes) -> str:
    """Decode a peer's line for a terminal: invalid UTF-8 replaced, controls escaped."""
    text = data.decode("utf-8", "replace")
    return "".join(
        ch if ch.isprintable() or ch == "\t" else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


async def chat(args: argparse.Namespace, out: Output) -> int:
    topic = parse_topic(args.topic)
    key_pair = load_identity(args.key, out)
    peers: set[Connection] = set()
    async with open_swarm(args, out, key_pair) as swarm:

        @swarm.on_connection
        async def handle(conn: Connection, info: PeerInfo) -> None:
            peer = conn.remote_public_key
            peers.add(conn)
            out.event(
                "join",
                f"* {short_id(peer)} joined ({len(peers)} connected)",
                peer=peer.hex(),
            )
            reason = "left"
            try:
                await _read_lines(conn, out)
            except LineTooLongError as exc:
                reason = f"dropped: {exc}"
            finally:
                peers.discard(conn)
                out.event("leave", f"* {short_id(peer)} {reason}", peer=peer.hex())

        swarm.join(topic, server=True, client=True)
        out.event(
            "joined",
            f"joined chat {args.topic!r} as {short_id(key_pair.public_key)}; "
            "type a line and press Enter, Ctrl-D to leave",
            topic=topic.hex(),
        )
        typed_all = anyio.Event()

        async def pump_lines() -> None:
            async with stdin_chunks() as chunks:
                lines = LineSplitter(max_line=1 << 30)
                async for chunk in chunks:
                    for line in lines.feed(chunk):
                        await _broadcast(peers, line[:MAX_LINE])
                if rest := lines.rest():
                    await _broadcast(peers, rest[:MAX_LINE])
            typed_all.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(pump_lines)
            await wait_any(typed_all, out.stop)
            tg.cancel_scope.cancel()
        out.event("bye", "* leaving the chat")
    return EXIT_OK


async def _broadcast(peers: set[Connection], line: bytes) -> None:
    for conn in list(peers):
        with contextlib.suppress(*_PEER_GONE):
            await conn.send(line + b"\n")


async def _read_lines(conn: Connection, out: Output) -> None:
    peer = conn.remote_public_key
    splitter = LineSplitter()
    with contextlib.suppress(*_PEER_GONE):
        async for chunk in conn:
            for line in splitter.feed(chunk):
                _show(out, peer, line)
    if rest := splitter.rest():
        _show(out, peer, rest)


def _show(out: Output, peer: bytes, line: bytes) -> None:
    text = printable(line)
    if out.json_mode:
        out.event("message", peer=peer.hex(), text=text)
        return
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.write(f"[{short_id(peer)}] {text}\n")
        sys.stdout.flush()
