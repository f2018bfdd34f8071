"""Fixtures for the example tests: a private local-network port and a process runner.

These tests drive real subprocesses; the test process itself only waits on their output,
so they run on asyncio alone (the CLI's own backend is exercised on trio by one test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.cli.ports import free_base_port
from tests.cli.proc import Runner, runner


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def local_port() -> int:
    return free_base_port()


@pytest.fixture
async def cli(local_port: int) -> AsyncIterator[Runner]:
    async with runner(local_port) as run:
        yield run
