"""A listener bounds the handshakes strangers can keep open by saying nothing."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from p2pswarm import Connection, KeyPair, connect_tcp, create_tcp_listener
from tests.silent_sockets import closed_by_peer

pytestmark = pytest.mark.anyio


TIMEOUT = 15.0


async def test_silent_sockets_past_the_cap_are_closed_and_the_slot_frees() -> None:
    server_key = KeyPair.generate()
    listener = await create_tcp_listener(
        local_host="127.0.0.1", key_pair=server_key, handshake_timeout=60.0
    )
    listener._max_pending_handshakes = 1
    port = listener.local_address[1]
    served = anyio.Event()

    async def handler(conn: Connection) -> None:
        await conn.send(await conn.receive())
        served.set()

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handler)
            silent = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(2)]
            try:
                refused: list[int] = []
                one_refused = anyio.Event()
                async with anyio.create_task_group() as watchers:
                    for index, stream in enumerate(silent):
                        watchers.start_soon(closed_by_peer, index, stream, refused, one_refused)
                    await one_refused.wait()
                    watchers.cancel_scope.cancel()
                assert len(refused) == 1  # the other one holds the only handshake slot

                await silent[1 - refused[0]].aclose()  # the stranger leaves: the slot frees
                conn = await connect_tcp("127.0.0.1", port, remote_public_key=server_key.public_key)
                async with conn:
                    await conn.send(b"ping")
                    assert await conn.receive() == b"ping"
                await served.wait()
            finally:
                for stream in silent:
                    await stream.aclose()
                await listener.aclose()
