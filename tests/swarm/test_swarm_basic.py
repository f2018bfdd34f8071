"""Upstream swarm.js scenarios 1-2, 6-8, 13-14, 19, 21: connecting, dedup, multiplexing."""

from __future__ import annotations

import pytest

from p2pswarm import topic

from .helpers import swarm_net

pytestmark = pytest.mark.anyio


async def test_one_server_one_client_connect() -> None:
    t = topic("basic-connect")
    async with swarm_net(2) as ((server, client), watch, _):
        await server.join(t, client=False).flushed()
        client.join(t, server=False)
        await client.flush()
        await watch.wait(lambda: watch.count(client) == 1 and watch.count(server) == 1)
        conn, info = watch.last(client)
        assert conn.is_initiator and info.client
        assert conn.remote_public_key == server.key_pair.public_key
        assert info.public_key == server.key_pair.public_key
        assert info.topics == [t]
        assert client.stats.client_opened == 1 and server.stats.server_opened == 1
