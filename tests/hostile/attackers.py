"""TCP attackers for the swarm flood tests: bogus handshakes, half-open sockets and a
slowloris, each reporting what the server did to it."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import anyio
import anyio.abc

__all__ = ("Tally", "bogus_handshake", "half_open", "slowloris")

#: What a server does to a socket it refuses: closes (EndOfStream) or resets it.
CUT = (anyio.EndOfStream, anyio.BrokenResourceError, OSError)


@dataclass
class Tally:
    """Counts of what the attackers saw; ``closed`` fires once ``cut == expected``."""

    expected: int
    cut: int = 0
    refused_at_connect: int = 0
    closed: anyio.Event = field(default_factory=anyio.Event)

    def record_cut(self) -> None:
        self.cut += 1
        if self.cut + self.refused_at_connect >= self.expected:
            self.closed.set()

    def record_refused(self) -> None:
        self.refused_at_connect += 1
        if self.cut + self.refused_at_connect >= self.expected:
            self.closed.set()


def bogus_first_message(rng: random.Random) -> bytes:
    """A first handshake message that is wrong in one of several ways."""
    kind = rng.randrange(5)
    if kind == 0:  # pure noise
        return rng.randbytes(rng.randint(1, 300))
    if kind == 1:  # a frame claiming 16 MiB
        return b"\xff\xff\xff" + rng.randbytes(40)
    if kind == 2:  # a well-framed message of the wrong size
        size = rng.choice((0, 1, 31, 33, 96, 200))
        return size.to_bytes(3, "little") + rng.randbytes(size)
    if kind == 3:  # a zero-length frame, repeated
        return b"\x00\x00\x00" * rng.randint(1, 50)
    # the right length with random content, then garbage where the third message goes
    return (32).to_bytes(3, "little") + rng.randbytes(32) + rng.randbytes(rng.randint(1, 200))


async def _until_cut(stream: anyio.abc.SocketStream) -> None:
    """Read (and discard what the server says) until the server ends the socket."""
    try:
        while True:
            await stream.receive()
    except CUT:
        return


async def bogus_handshake(port: int, rng: random.Random, tally: Tally) -> None:
    try:
        stream = await anyio.connect_tcp("127.0.0.1", port)
    except OSError:
        tally.record_refused()
        return
    async with stream:
        try:
            await stream.send(bogus_first_message(rng))
            if rng.random() < 0.5:
                await stream.send_eof()  # and a half-close on top
        except CUT:
            pass
        await _until_cut(stream)
    tally.record_cut()


async def half_open(port: int, tally: Tally, *, eof: bool) -> None:
    """Connect and say nothing (``eof``: shut our sending side at once, still say nothing)."""
    try:
        stream = await anyio.connect_tcp("127.0.0.1", port)
    except OSError:
        tally.record_refused()
        return
    async with stream:
        if eof:
            await stream.send_eof()
        await _until_cut(stream)
    tally.record_cut()


async def slowloris(port: int, interval: float, budget: int) -> int:
    """Send a plausible first message one byte per ``interval``; return how many bytes went
    out before the server cut the socket (``budget`` if it never did)."""
    message = (32).to_bytes(3, "little") + bytes(range(32)) + bytes(budget)
    stream = await anyio.connect_tcp("127.0.0.1", port)
    async with stream:
        for sent in range(budget):
            try:
                await stream.send(message[sent : sent + 1])
            except CUT:
                return sent
            # The trickle: one byte per interval, unless the server cuts us first.
            with anyio.move_on_after(interval):
                try:
                    await stream.receive()
                except CUT:
                    return sent + 1
    return budget
