"""The public test kit: a local testnet and a fake clock.

Application tests use these to run swarms against a throwaway DHT on 127.0.0.1 and to
move time forward without sleeping.
"""

from __future__ import annotations

from .dht.testnet import Testnet, create_testnet

__all__ = ("FakeClock", "Testnet", "create_testnet")


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
