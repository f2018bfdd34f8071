"""Floods of random and malformed datagrams at a DHT node (our own wire and HyperDHT's):
every one is dropped, honest pings and lookups are answered throughout, and the node's
memory and tables stay bounded.

The default suite sends 5 000 datagrams per node; the ``slow`` versions send 100 000. The
rate limits are lifted so that every datagram reaches the decoders (a throttled source
would be dropped before them, which is cheaper and proves less).
"""

from __future__ import annotations

import os
import random

import anyio
import pytest

from p2pswarm.dht import DHTNode
from p2pswarm.dht.messages import Command, NodeContact, Request, Response
from p2pswarm.hyperdht import HyperDHT, create_testnet
from p2pswarm.hyperdht.limits import Limits
from p2pswarm.keys import KeyPair, topic
from p2pswarm.protocol import dht_rpc
from p2pswarm.protocol.compact import IPv4Address
from p2pswarm.protocol.hyperdht_messages import Command as HyperCommand
from tests.dht.helpers import new_rid, open_raw_peer
from tests.hyperdht.helpers import raw_peer

from .floods import MemoryMeter, flood, hostile_datagrams

pytestmark = pytest.mark.anyio

TOPIC = topic("hostile floods")
#: Generous bounds: a flood may cost a few MiB of heap while it runs, never more, and what
#: stays afterwards is small (caches have fixed caps; nothing grows per datagram).
PEAK_BOUND = 24 * 1024 * 1024
KEPT_BOUND = 4 * 1024 * 1024
#: A full lookup after every this many datagrams (a raw ping after every batch of 50).
LOOKUP_EVERY = 1000
UNLIMITED = Limits(
    request_rate=1e9,
    request_burst=1e9,
    unproven_bytes_rate=1e9,
    unproven_bytes_burst=1e9,
    unproven_total_rate=1e9,
    unproven_total_burst=1e9,
)


def own_wire_samples(token: bytes) -> list[bytes]:
    contact = NodeContact(os.urandom(20), "127.0.0.1", 9)
    return [
        Request(Command.PING, new_rid(), padding=16).encode(),
        Request(Command.FIND_NODE, new_rid(), os.urandom(20), key=os.urandom(20)).encode(),
        Request(Command.LOOKUP, new_rid(), key=TOPIC, padding=40).encode(),
        Request(Command.ANNOUNCE, new_rid(), token=token, payload=os.urandom(180)).encode(),
        Response(Command.LOOKUP, 1, ("127.0.0.1", 9), os.urandom(20), nodes=(contact,)).encode(),
    ]


async def own_wire_flood(count: int) -> tuple[int, MemoryMeter, DHTNode]:
    key_pair = KeyPair.generate()
    meter = MemoryMeter()
    async with (
        DHTNode(ephemeral=False, rate_limit=None) as target,
        DHTNode(bootstrap=[target.address]) as client,
    ):
        raw = await open_raw_peer()
        async with raw.sock:
            await client.announce(TOPIC, key_pair, 4242)
            token = await raw.token_from(target.address, TOPIC)
            lookups = 0

            async def honest(sent: int) -> None:
                nonlocal lookups
                reply = await raw.request(target.address, Request(Command.PING, new_rid()))
                assert reply.node_id == target.node_id
                if sent % LOOKUP_EVERY == 0:
                    with anyio.fail_after(10):
                        async with client.lookup(TOPIC) as found:
                            keys = [record.public_key async for record in found]
                    assert keys == [key_pair.public_key]
                    lookups += 1

            rng = random.Random(f"own wire {count}")
            meter.start()
            try:
                sent = await flood(
                    target.address, hostile_datagrams(rng, own_wire_samples(token), count), honest
                )
            finally:
                meter.stop()
            assert lookups == count // LOOKUP_EVERY
            assert target.stored_records == 1  # no garbage was stored
            assert len(target.routing_table) <= 1  # the client, if anyone
            return sent, meter, target


def hyperdht_samples(node: HyperDHT) -> list[bytes]:
    to = IPv4Address(*node.address)
    closer = tuple(IPv4Address("127.0.0.1", 1000 + i) for i in range(5))
    return [
        dht_rpc.Request(1, to, dht_rpc.InternalCommand.PING, True).encode(),
        dht_rpc.Request(
            2, to, dht_rpc.InternalCommand.FIND_NODE, True, target=os.urandom(32)
        ).encode(),
        dht_rpc.Request(3, to, HyperCommand.LOOKUP, target=TOPIC).encode(),
        dht_rpc.Request(
            4, to, HyperCommand.ANNOUNCE, token=os.urandom(32), target=TOPIC, value=os.urandom(99)
        ).encode(),
        dht_rpc.Response(5, to, id=os.urandom(32), closer_nodes=closer, value=b"x").encode(),
    ]


async def hyperdht_flood(count: int) -> tuple[int, MemoryMeter, HyperDHT]:
    key_pair = KeyPair.generate()
    meter = MemoryMeter()
    async with create_testnet(1) as testnet, raw_peer() as raw:
        target = await testnet.add_node(limits=UNLIMITED)
        client = await testnet.create_node()
        await client.announce(TOPIC, key_pair)
        lookups = 0
        ping = dht_rpc.InternalCommand.PING

        async def honest(sent: int) -> None:
            nonlocal lookups
            request = dht_rpc.Request(sent % 65536, raw.to(target), ping, True)
            assert (await raw.request(target.address, request)).error == 0
            if sent % LOOKUP_EVERY == 0:
                with anyio.fail_after(10):
                    replies = [reply async for reply in client.lookup(TOPIC)]
                from_target = [r for r in replies if r.from_address == target.address]
                assert [p.public_key for r in from_target for p in r.peers] == [key_pair.public_key]
                lookups += 1

        rng = random.Random(f"hyperdht {count}")
        meter.start()
        try:
            sent = await flood(
                target.address, hostile_datagrams(rng, hyperdht_samples(target), count), honest
            )
        finally:
            meter.stop()
        assert lookups == count // LOOKUP_EVERY
        assert target.dropped["throttled"] == 0  # the limits were lifted: all were decoded
        assert target.tracked_sources <= UNLIMITED.max_sources
        assert target.pending_verifications <= 64
        return sent, meter, target


def check_memory(meter: MemoryMeter) -> None:
    assert meter.peak_growth < PEAK_BOUND, meter
    assert meter.kept < KEPT_BOUND, meter


async def test_own_wire_node_survives_5k_hostile_datagrams() -> None:
    sent, meter, target = await own_wire_flood(5_000)
    assert sent == 5_000
    assert target.dropped_datagrams >= 2_000  # noise and damaged copies: most are dropped
    check_memory(meter)


async def test_hyperdht_node_survives_5k_hostile_datagrams() -> None:
    sent, meter, target = await hyperdht_flood(5_000)
    assert sent == 5_000
    assert sum(target.dropped.values()) >= 2_000
    check_memory(meter)


@pytest.mark.slow
async def test_own_wire_node_survives_100k_hostile_datagrams() -> None:
    sent, meter, target = await own_wire_flood(100_000)
    assert sent == 100_000 and target.dropped_datagrams >= 40_000
    check_memory(meter)


@pytest.mark.slow
async def test_hyperdht_node_survives_100k_hostile_datagrams() -> None:
    sent, meter, target = await hyperdht_flood(100_000)
    assert sent == 100_000 and sum(target.dropped.values()) >= 40_000
    check_memory(meter)
