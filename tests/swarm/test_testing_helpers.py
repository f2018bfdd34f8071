"""p2pswarm.testing.wait_until: waits on update events, bounded, and cleans up after itself."""

from __future__ import annotations

import anyio
import pytest

from p2pswarm import topic
from p2pswarm.testing import wait_until

from .helpers import swarm_net

pytestmark = pytest.mark.anyio


async def test_wait_until_returns_once_the_swarms_connect() -> None:
    t = topic("wait-until")
    async with swarm_net(2, watch=False) as ((server, client), _, _):
        await server.join(t, client=False).flushed()
        client.join(t, server=False)
        await wait_until(
            lambda: len(server.connections) == 1 and len(client.connections) == 1,
            server,
            client,
        )
        assert not client._on_update and not server._on_update  # unregistered


async def test_wait_until_is_bounded() -> None:
    async with swarm_net(1, watch=False) as ((swarm,), _, _):
        with pytest.raises(TimeoutError):
            await wait_until(lambda: False, swarm, within=0.05)
        assert not swarm._on_update
        with anyio.fail_after(5):
            await wait_until(lambda: True, swarm)  # already true: no wait
