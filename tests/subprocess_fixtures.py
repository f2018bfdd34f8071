"""Shared fixtures for tests that drive real subprocesses (CLI and examples).

A private local-network port and a process runner. The test process itself only waits
on the subprocesses' output, so these tests run on asyncio alone (the CLI's own backend
is exercised on trio by one test). Kept in one place so the CLI and example suites
cannot drift apart.
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
