"""Strangers who open sockets and say nothing cost a bounded number of handshakes."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from p2pswarm.connection import Connection
from p2pswarm.swarm import Swarm
from p2pswarm.swarm.peer_info import PeerInfo
from p2pswarm.testing import create_testnet
from tests.silent_sockets import closed_by_peer

from .helpers import TIMEOUT

pytestmark = pytest.mark.anyio


async def test_silent_sockets_past_the_cap_are_closed_and_the_slot_frees() -> None:
    async with (
        create_testnet(3) as net,
        Swarm(bootstrap=net.bootstrap, handshake_timeout=60.0) as server,
    ):
        server._max_pending_handshakes = 1
        await server.listen()
        silent = [await anyio.connect_tcp("127.0.0.1", server.port) for _ in range(2)]
        try:
            refused: list[int] = []
            one_refused = anyio.Event()
            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as tg:
                    for index, stream in enumerate(silent):
                        tg.start_soon(closed_by_peer, index, stream, refused, one_refused)
                    await one_refused.wait()
                    tg.cancel_scope.cancel()
            assert len(refused) == 1  # the other one holds the only handshake slot

            # The held slot frees when that stranger goes away; a real peer then gets in.
            await silent[1 - refused[0]].aclose()
            connected = anyio.Event()

            def seen(conn: Connection, peer: PeerInfo) -> None:
                connected.set()

            async with Swarm(bootstrap=net.bootstrap) as client:
                client.on_connection(seen)
                client.join_peer(server.key_pair.public_key)
                with anyio.fail_after(TIMEOUT):
                    await connected.wait()
        finally:
            for stream in silent:
                await stream.aclose()
