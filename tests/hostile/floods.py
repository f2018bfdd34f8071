"""Shared pieces of the hostile-input tests: seeded generators of broken datagrams, a
flooder that keeps the target's socket buffer from overflowing, and a memory meter.

The flooder sends in small batches and runs an honest exchange after each one. The target
reads its socket in order, so the honest answer means every datagram of the batch has been
through the decoder (none was dropped by a full kernel buffer): the count of inputs tried is
the count that reached the code under test.
"""

from __future__ import annotations

import random
import socket
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import anyio

__all__ = ("MemoryMeter", "flood", "hostile_datagrams", "mutate")


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One random damage of a valid message: flipped bytes, a cut, a tail, a splice."""
    choice = rng.randrange(6)
    buf = bytearray(data)
    if choice == 0 and buf:  # flip a few bytes
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    elif choice == 1 and buf:  # truncate
        del buf[rng.randrange(len(buf)) :]
    elif choice == 2:  # trailing garbage
        buf += rng.randbytes(rng.randint(1, 64))
    elif choice == 3 and buf:  # overwrite a run with 0xff (huge varints / lengths)
        at = rng.randrange(len(buf))
        buf[at : at + rng.randint(1, 9)] = b"\xff" * rng.randint(1, 9)
    elif choice == 4 and buf:  # insert random bytes in the middle
        at = rng.randrange(len(buf))
        buf[at:at] = rng.randbytes(rng.randint(1, 16))
    else:  # the valid header, then noise
        buf = buf[: rng.randint(0, 8)] + bytearray(rng.randbytes(rng.randint(0, 200)))
    return bytes(buf)


def hostile_datagrams(rng: random.Random, valid: Sequence[bytes], count: int) -> Iterator[bytes]:
    """``count`` datagrams: a third pure noise (0 to 1400 bytes), two thirds damaged copies
    of ``valid`` messages."""
    for _ in range(count):
        if rng.random() < 1 / 3:
            yield rng.randbytes(rng.choice((0, 1, 2, 3, 7, 20, rng.randint(0, 1400))))
        else:
            yield mutate(rng, rng.choice(valid))


async def flood(
    target: tuple[str, int],
    datagrams: Iterator[bytes],
    honest: Callable[[int], Awaitable[None]],
    *,
    batch: int = 50,
) -> int:
    """Send every datagram to ``target`` from one socket; after each ``batch``, await
    ``honest(sent_so_far)``. Returns how many were sent."""
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        for data in datagrams:
            while True:
                try:
                    sock.sendto(data, target)
                    break
                except BlockingIOError:
                    await anyio.wait_writable(sock)
            sent += 1
            if sent % batch == 0:
                await honest(sent)
        if sent % batch:
            await honest(sent)
    return sent


@dataclass
class MemoryMeter:
    """Python heap growth over a flood, by tracemalloc: peak and what stays afterwards."""

    baseline: int = 0
    peak: int = 0
    after: int = 0

    def start(self) -> None:
        tracemalloc.start()
        self.baseline = tracemalloc.get_traced_memory()[0]

    def stop(self) -> None:
        self.after, self.peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    @property
    def peak_growth(self) -> int:
        return self.peak - self.baseline

    @property
    def kept(self) -> int:
        return self.after - self.baseline
