"""Unregistering ``on_connection``, ``on_update`` and ``on_ban`` callbacks.

Sync callbacks of one event are called in registration order in one go, so once a later
callback has seen an event, a removed earlier one would have seen it too.
"""

from __future__ import annotations

import pytest

from p2pswarm import topic
from p2pswarm.connection import Connection
from p2pswarm.swarm.peer_info import PeerInfo

from .helpers import swarm_net

pytestmark = pytest.mark.anyio


async def test_removed_callbacks_see_no_later_event() -> None:
    t = topic("callbacks-remove")
    async with swarm_net(3) as ((hub, first, second), watch, _):
        seen: dict[str, list[bytes]] = {"removed": [], "kept": []}
        updates = {"removed": 0, "kept": 0}
        bans: dict[str, list[bytes]] = {"removed": [], "kept": []}

        def removed(conn: Connection, peer: PeerInfo) -> None:
            seen["removed"].append(peer.public_key)

        def kept(conn: Connection, peer: PeerInfo) -> None:
            seen["kept"].append(peer.public_key)

        def removed_update() -> None:
            updates["removed"] += 1

        def kept_update() -> None:
            updates["kept"] += 1

        def removed_ban(peer: PeerInfo, error: Exception) -> None:
            bans["removed"].append(peer.public_key)

        def kept_ban(peer: PeerInfo, error: Exception) -> None:
            bans["kept"].append(peer.public_key)

        assert hub.on_connection(removed) is removed  # still a decorator
        hub.on_connection(kept)
        hub.on_update(removed_update)
        hub.on_update(kept_update)
        hub.on_ban(removed_ban)
        hub.on_ban(kept_ban)

        await hub.join(t, client=False).flushed()
        first.join(t, server=False)
        await watch.wait(lambda: len(seen["kept"]) == 1)
        assert seen["removed"] == seen["kept"] == [first.key_pair.public_key]
        assert updates["removed"] > 0
        hub.peers[first.key_pair.public_key].ban()
        assert bans["removed"] == bans["kept"] == [first.key_pair.public_key]

        assert hub.remove_connection_handler(removed)
        assert hub.remove_update_callback(removed_update)
        assert hub.remove_ban_callback(removed_ban)
        assert not hub.remove_connection_handler(removed)  # not registered any more
        assert not hub.remove_update_callback(removed_update)
        assert not hub.remove_ban_callback(removed_ban)
        updates_before = updates["removed"]

        second.join(t, server=False)
        await watch.wait(lambda: len(seen["kept"]) == 2)
        assert seen["kept"][1] == second.key_pair.public_key
        assert seen["removed"] == [first.key_pair.public_key]
        assert updates["kept"] > updates_before and updates["removed"] == updates_before
        hub.peers[second.key_pair.public_key].ban()
        assert bans["kept"][-1] == second.key_pair.public_key
        assert bans["removed"] == [first.key_pair.public_key]
