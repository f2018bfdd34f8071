"""Subprocess fixtures (local port, process runner) shared with the other subprocess suite."""

from tests.subprocess_fixtures import anyio_backend, cli, local_port

__all__ = ["anyio_backend", "cli", "local_port"]
