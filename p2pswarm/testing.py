"""The public test kit: a local testnet and a fake clock.

Application tests use these to run swarms against a throwaway DHT on 127.0.0.1 and to
move time forward without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from .dht.testnet import Testnet, create_testnet

if TYPE_CHECKING:
    from .swarm import Swarm

__all__ = ("FakeClock", "Testnet", "create_testnet", "wait_until")


class FakeClock:
    """A clock that only moves when told to: pass it as ``clock=`` and call :meth:`advance`.

    Starts at a realistic epoch time, so records signed with it carry plausible expiries.
    """

    __slots__ = ("now",)

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self.now += seconds


# -- swarm helpers ----------------------------------------------------------------------------


async def wait_until(predicate: Callable[[], bool], *swarms: Swarm, within: float = 10.0) -> None:
    """Return as soon as ``predicate()`` holds, re-checking it after every update event
    (connections, dials or peers changed) of ``swarms``; no sleeping, no polling.

    ``within`` seconds is only a safety bound: past it, ``TimeoutError`` is raised. For
    example ``await wait_until(lambda: len(swarm.connections) == 3, swarm)``.
    """
    changed = anyio.Event()

    def notify() -> None:
        nonlocal changed
        changed.set()
        changed = anyio.Event()

    for swarm in swarms:
        swarm.on_update(notify)
    try:
        with anyio.fail_after(within):
            while not predicate():
                await changed.wait()
    finally:
        for swarm in swarms:
            swarm.remove_update_callback(notify)
