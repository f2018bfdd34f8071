"""Announce floods from many keys at a storing node, on both DHTs: every announce is
valid (signed, with a real token), yet the node's storage never passes its caps, lookups
stay one bounded datagram, and an honest announce made afterwards is found.

Default: 500 keys per DHT; ``slow``: 5000.
"""

from __future__ import annotations

import pytest

from p2pswarm.dht import DHTNode
from p2pswarm.dht.messages import (
    MAX_RECORDS_PER_REPLY,
    Command as OwnCommand,
    Request as OwnRequest,
    Status,
)
from p2pswarm.dht.records import create_record
from p2pswarm.hyperdht import create_testnet
from p2pswarm.hyperdht.records import sign_announce
from p2pswarm.hyperdht.serving import LOOKUP_RECORDS, Store
from p2pswarm.keys import KeyPair, topic
from p2pswarm.protocol import dht_rpc
from p2pswarm.protocol.hyperdht_messages import (
    Announce,
    Command,
    Peer,
    decode_lookup_reply,
    encode_announce,
)
from tests.dht.helpers import new_rid, open_raw_peer
from tests.hyperdht.helpers import raw_peer

from .test_datagram_floods import UNLIMITED

pytestmark = pytest.mark.anyio

TOPICS = [topic(f"announce flood {i}") for i in range(10)]


async def own_wire_announce_flood(keys: int, max_records: int, per_topic: int) -> None:
    raw = await open_raw_peer()
    async with (
        raw.sock,
        DHTNode(
            ephemeral=False,
            rate_limit=None,
            max_records=max_records,
            max_records_per_topic=per_topic,
        ) as target,
    ):
        tokens = {t: await raw.token_from(target.address, t) for t in TOPICS}
        for i in range(keys):
            t = TOPICS[i % len(TOPICS)]
            record = create_record(KeyPair.generate(), t, 1000 + i % 60000, seq=1, expiry=4e9)
            request = OwnRequest(
                OwnCommand.ANNOUNCE, new_rid(), token=tokens[t], payload=record.encode()
            )
            reply = await raw.request(target.address, request)
            assert reply.status is Status.OK
            assert target.stored_records <= max_records
        assert target.stored_records == max_records
        # A lookup of a full topic answers with a bounded sample.
        reply = await raw.request(
            target.address, OwnRequest(OwnCommand.LOOKUP, new_rid(), key=TOPICS[0])
        )
        assert len(reply.records) <= MAX_RECORDS_PER_REPLY
        # The honest peer who comes after the flood is stored and found.
        honest = KeyPair.generate()
        room = topic("honest after the flood")
        async with DHTNode(bootstrap=[target.address]) as client:
            await client.announce(room, honest, 4242)
            async with client.lookup(room) as found:
                keys_found = {record.public_key async for record in found}
        assert keys_found == {honest.public_key}
        assert target.stored_records <= max_records


async def hyperdht_announce_flood(keys: int, max_size: int) -> None:
    store = Store(max_size=max_size)
    async with create_testnet(1) as testnet, raw_peer() as raw:
        target = await testnet.add_node(limits=UNLIMITED, store=store)
        assert target.id is not None
        to = raw.to(target)
        tokens: dict[bytes, bytes] = {}
        for tid, t in enumerate(TOPICS):
            reply = await raw.request(
                target.address, dht_rpc.Request(tid, to, Command.LOOKUP, target=t)
            )
            assert reply.token is not None
            tokens[t] = reply.token
        for i in range(keys):
            t = TOPICS[i % len(TOPICS)]
            key_pair = KeyPair.generate()
            peer = Peer(key_pair.public_key)
            signature = sign_announce(key_pair, t, target.id, tokens[t], peer)
            value = encode_announce(Announce(peer, None, signature))
            request = dht_rpc.Request(
                i % 65536, to, Command.ANNOUNCE, token=tokens[t], target=t, value=value
            )
            reply = await raw.request(target.address, request)
            assert reply.error == 0
            # Two generations: the fresh one holds at most max_size; it turns stale when an
            # add takes it one past (as JS's record-cache): 2 * max_size + 1 at the most.
            assert len(store.records) <= 2 * max_size + 1
        # A lookup answers with at most LOOKUP_RECORDS of them: one bounded datagram.
        reply = await raw.request(
            target.address, dht_rpc.Request(1, to, Command.LOOKUP, target=TOPICS[0])
        )
        assert reply.value is not None
        assert len(decode_lookup_reply(reply.value).peers) <= LOOKUP_RECORDS
        assert len(reply.encode()) <= dht_rpc.MAX_DATAGRAM_SIZE
        # The honest peer who comes after the flood is stored and found.
        honest = KeyPair.generate()
        client = await testnet.create_node()
        room = topic("honest after the flood")
        await client.announce(room, honest)
        found = {
            p.public_key async for lookup_reply in client.lookup(room) for p in lookup_reply.peers
        }
        assert found == {honest.public_key}
        assert len(store.records) <= 2 * max_size + 1


async def test_own_wire_announce_flood_from_500_keys_stays_under_the_caps() -> None:
    await own_wire_announce_flood(500, max_records=100, per_topic=30)


async def test_hyperdht_announce_flood_from_500_keys_stays_under_the_caps() -> None:
    await hyperdht_announce_flood(500, max_size=50)


@pytest.mark.slow
async def test_own_wire_announce_flood_from_5000_keys() -> None:
    await own_wire_announce_flood(5000, max_records=500, per_topic=100)


@pytest.mark.slow
async def test_hyperdht_announce_flood_from_5000_keys() -> None:
    await hyperdht_announce_flood(5000, max_size=500)
