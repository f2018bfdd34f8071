"""Fixtures of the network lab (see kit.py): skipped, with the reason, where it cannot run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.subprocess_fixtures import anyio_backend, cli, local_port

from .kit import Lab, unavailable

__all__ = ["anyio_backend", "cli", "lab4", "local_port"]


@pytest.fixture
def lab4() -> Iterator[Lab]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    with Lab(4) as lab:
        yield lab
