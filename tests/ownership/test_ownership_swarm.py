"""Ownership on live swarms: all members agree, actions run on the owner, checked there."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import anyio
import pytest

from p2pswarm import Swarm, topic
from p2pswarm.errors import RemoteError
from p2pswarm.ownership import Ownership
from p2pswarm.rpc import RPC
from p2pswarm.testing import create_testnet, wait_until

pytestmark = pytest.mark.anyio
ROOM = topic("ownership room")
N = 4


async def test_members_agree_and_actions_run_on_the_owner() -> None:
    async with create_testnet(3) as net, AsyncExitStack() as stack:
        swarms = [await stack.enter_async_context(Swarm(bootstrap=net.bootstrap)) for _ in range(N)]
        stores: list[dict[bytes, Any]] = [{} for _ in range(N)]
        owners: list[Ownership] = []
        for i, swarm in enumerate(swarms):
            rpc = RPC(swarm)
            owner = Ownership(swarm, ROOM, rpc)

            @owner.action("put")
            def put(key: bytes, value: Any, caller: bytes, i: int = i) -> bool:
                stores[i][key] = value
                return True

            @owner.action("get")
            def get(key: bytes, value: Any, caller: bytes, i: int = i) -> Any:
                return stores[i].get(key)

            owners.append(owner)
        for swarm in swarms:
            swarm.join(ROOM)
        with anyio.fail_after(20):
            for o in owners:  # channels open after the connection events
                await o.rpc.wait_for_peers(N - 1)
        await wait_until(lambda: all(len(o.members()) == N for o in owners), *swarms, within=20)
        keys = [f"k{i}".encode() for i in range(40)]
        for key in keys:
            assert len({o.responsible_peer(key) for o in owners}) == 1
        for n, key in enumerate(keys):
            assert await owners[n % N].call(key, "put", {"n": n}) is True
        for n, key in enumerate(keys):
            assert await owners[(n + 1) % N].call(key, "get") == {"n": n}
        by_key = {s.key_pair.public_key: stores[i] for i, s in enumerate(swarms)}
        for key in keys:
            assert key in by_key[owners[0].responsible_peer(key)]
        assert sum(len(s) for s in stores) == len(keys)  # each stored once
        assert all(stores)  # spread over every member

        # A request to a member that is not responsible is refused there.
        key = keys[0]
        wrong = next(o for o in owners if not o.is_mine(key))
        asker = next(o for o in owners if o is not wrong)
        with pytest.raises(RemoteError) as raised:
            await asker.rpc.request(
                "own.put",
                {"key": key.hex(), "payload": 1},
                peer=wrong.swarm.key_pair.public_key,
            )
        assert raised.value.code == "not-responsible"
        with pytest.raises(RemoteError) as bad:
            await asker.rpc.request("own.put", {"key": "zz"}, peer=wrong.swarm.key_pair.public_key)
        assert bad.value.code == "bad-request"
        with pytest.raises(ValueError):
            owners[0].responsible_peer(b"x" * 2000)
