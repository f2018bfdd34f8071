"""Two UDX stream machines wired through a fake lossy, reordering link on a fake clock."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from p2pswarm.protocol.udx import UDXStreamMachine, decode_packet

__all__ = ("Link", "Pair", "make_pair")


@dataclass
class Link:
    """Delivers datagrams after ``delay`` (plus jitter, which reorders), dropping some."""

    seed: int = 0
    loss: float = 0.0
    delay: float = 0.005
    jitter: float = 0.0
    duplicate: float = 0.0
    #: Called for every datagram about to be queued; False drops it.
    filter: Callable[[str, bytes], bool] | None = None
    rng: random.Random = field(init=False)
    queue: list[tuple[float, int, str, bytes]] = field(default_factory=list)
    counter: int = 0
    sent: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def send(self, to: str, datagram: bytes, now: float) -> None:
        self.sent[to] += 1
        if self.filter is not None and not self.filter(to, datagram):
            return
        if self.rng.random() < self.loss:
            return
        copies = 2 if self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            at = now + self.delay + self.rng.random() * self.jitter
            self.counter += 1
            heapq.heappush(self.queue, (at, self.counter, to, datagram))


@dataclass
class Pair:
    a: UDXStreamMachine
    b: UDXStreamMachine
    link: Link
    now: float = 0.0
    received: dict[str, bytearray] = field(
        default_factory=lambda: {"a": bytearray(), "b": bytearray()}
    )
    read_size: int | None = 1 << 20
    check_ids: bool = True

    def machines(self) -> tuple[tuple[str, UDXStreamMachine, str], ...]:
        return (("a", self.a, "b"), ("b", self.b, "a"))

    def flush(self) -> None:
        for _name, machine, other in self.machines():
            for datagram in machine.poll_transmit(self.now):
                self.link.send(other, datagram, self.now)

    def drain_reads(self) -> None:
        if self.read_size is None:
            return
        for name, machine, _other in self.machines():
            while machine.readable:
                self.received[name] += machine.read(self.read_size)

    def step(self) -> bool:
        """Advance to the next event; False when nothing is left to happen."""
        self.flush()
        self.drain_reads()
        self.flush()
        candidates = [t for m in (self.a, self.b) if (t := m.next_timeout()) is not None]
        if self.link.queue:
            candidates.append(self.link.queue[0][0])
        if not candidates:
            return False
        self.now = max(self.now, min(candidates))
        while self.link.queue and self.link.queue[0][0] <= self.now:
            _, _, to, datagram = heapq.heappop(self.link.queue)
            machine = self.a if to == "a" else self.b
            packet = decode_packet(datagram)
            assert packet.stream_id == machine.local_id or not self.check_ids
            machine.receive_packet(packet, self.now)
        for machine in (self.a, self.b):
            timeout = machine.next_timeout()
            if timeout is not None and timeout <= self.now:
                machine.handle_timeout(self.now)
        return True

    def run_until(self, done: Callable[[], bool], max_steps: int = 200_000) -> None:
        for _ in range(max_steps):
            if done():
                return
            if not self.step():
                break
        assert done(), "the exchange did not finish"


def make_pair(link: Link | None = None, **options: object) -> Pair:
    a = UDXStreamMachine(1, now=0.0, **options)  # type: ignore[arg-type]
    b = UDXStreamMachine(2, now=0.0, **options)  # type: ignore[arg-type]
    a.connect(2, 0.0)
    b.connect(1, 0.0)
    return Pair(a, b, link or Link())
