"""Starting and stopping many swarms at once, for the swarm benchmarks.

A :class:`~p2pswarm.Swarm` owns a task group, so it must be entered and left in one task.
The anchor starts its swarms with ``Promise.all(... fullyBootstrapped())`` and destroys them
with ``Promise.all(... destroy())``: concurrently. :class:`SwarmPool` does the same here:
each swarm lives in its own task of the pool's task group, and the pool starts (enters,
binds, bootstraps) and stops (unannounces, closes) them concurrently, so ``bootstrap_ms``
and ``teardown_ms`` mean what they mean in the anchor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc

from p2pswarm import Swarm


@dataclass(eq=False)
class _Hosted:
    swarm: Swarm
    release: anyio.Event = field(default_factory=anyio.Event)
    done: anyio.Event = field(default_factory=anyio.Event)


class SwarmPool:
    """Swarms entered and left concurrently, each in its own task of ``tg``."""

    def __init__(self, tg: anyio.abc.TaskGroup) -> None:
        self._tg = tg
        self._hosted: dict[Swarm, _Hosted] = {}

    async def start(self, count: int, **options: Any) -> list[Swarm]:
        """Create ``count`` swarms with ``options`` and wait until every one is running
        (listening, DHT bootstrapped)."""
        swarms = [Swarm(**options) for _ in range(count)]
        async with anyio.create_task_group() as starter:
            for swarm in swarms:
                hosted = _Hosted(swarm)
                self._hosted[swarm] = hosted
                starter.start_soon(self._tg.start, self._host, hosted)
        return swarms

    @staticmethod
    async def _host(hosted: _Hosted, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        try:
            async with hosted.swarm:
                task_status.started()
                await hosted.release.wait()
        finally:
            hosted.done.set()

    async def stop(self, swarms: list[Swarm]) -> None:
        """Close ``swarms`` concurrently (as ``destroy()``: unannounce, close connections)
        and wait until every one has left its task group."""
        hosted = [self._hosted.pop(s) for s in swarms if s in self._hosted]
        for entry in hosted:
            entry.release.set()
        for entry in hosted:
            await entry.done.wait()

    async def stop_all(self) -> None:
        """Close every swarm still running (the benchmarks' safety net on errors)."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(30):
            await self.stop(list(self._hosted))
