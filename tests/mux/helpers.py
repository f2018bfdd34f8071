"""Two Muxes over a real secret stream on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from p2pswarm.connection import Connection
from p2pswarm.mux import Mux

from ..test_connection import connected_pair

__all__ = ("connected_pair", "mux_pair")


@asynccontextmanager
async def mux_pair(
    **options: Any,
) -> AsyncIterator[tuple[Mux, Mux, anyio.abc.TaskGroup, tuple[Connection, Connection]]]:
    """(a, b, task_group, connections): two idle Muxes; start them with ``tg.start_soon(m.run)``."""
    async with connected_pair() as (ca, cb):
        a = Mux(ca, **options)
        b = Mux(cb, **options)
        async with anyio.create_task_group() as tg:
            yield a, b, tg, (ca, cb)
            tg.cancel_scope.cancel()
