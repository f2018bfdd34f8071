"""Shared test fixtures.

Every async test runs on asyncio and on trio (anyio's own convention), unless a module
pins ``anyio_backend`` itself.
"""

from __future__ import annotations

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
