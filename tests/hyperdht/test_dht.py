"""The HyperDHT API on a Python testnet: topics, servers, values and their error paths."""

from __future__ import annotations

import pytest

from p2pswarm.errors import SeqReusedError, SeqTooLowError
from p2pswarm.hyperdht import PUBLIC_BOOTSTRAP, HyperDHT, create_testnet
from p2pswarm.hyperdht.records import hash32, sign_mutable
from p2pswarm.hyperdht.rpc import IncomingRequest
from p2pswarm.keys import KeyPair, topic
from p2pswarm.protocol.compact import IPv4Address
from p2pswarm.protocol.hyperdht_messages import (
    MAX_MUTABLE_VALUE_SIZE,
    MAX_VALUE_SIZE,
    Command,
    MutableGetResponse,
    encode_mutable_get_response,
)

pytestmark = pytest.mark.anyio

ALICE = KeyPair.from_seed(b"a" * 32)
BOB = KeyPair.from_seed(b"b" * 32)


async def test_announce_lookup_unannounce() -> None:
    room = topic("python testnet")
    async with create_testnet(4) as testnet:
        assert all(node.id is not None for node in testnet.nodes)
        client = await testnet.create_node()
        assert client.id is None and testnet.nodes[-1] is client
        stored = await client.announce(room, ALICE, [("127.0.0.1", 1), ("127.0.0.1", 2)])
        # every persistent node took it (the client, appended to the nodes, is ephemeral)
        assert sorted(stored) == sorted(node.address for node in testnet.nodes[:4])
        await testnet.nodes[1].announce(room, BOB)
        replies = [reply async for reply in client.lookup(room)]
        assert len(replies) == 4
        # a query never asks its own node (as in JS): Bob's node does not hold Bob's record
        with_bob = [r for r in replies if BOB.public_key in {p.public_key for p in r.peers}]
        assert sorted(r.from_address for r in with_bob) == sorted(
            n.address for n in testnet.nodes[:4] if n is not testnet.nodes[1]
        )
        for reply in replies:
            alice = next(p for p in reply.peers if p.public_key == ALICE.public_key)
            assert alice.relay_addresses == (
                IPv4Address("127.0.0.1", 1),
                IPv4Address("127.0.0.1", 2),
            )
        await client.unannounce(room, ALICE)
        keys = [p.public_key async for reply in client.lookup(room) for p in reply.peers]
        assert keys == [BOB.public_key] * 3


async def test_find_peer_and_values() -> None:
    async with create_testnet(3) as testnet:
        client = await testnet.create_node()
        assert await client.find_peer(ALICE.public_key) is None
        await testnet.nodes[2].announce(hash32(ALICE.public_key), ALICE, [("127.0.0.1", 9)])
        found = await client.find_peer(ALICE.public_key)
        assert found is not None and found.public_key == ALICE.public_key
        assert found.relay_addresses == (IPv4Address("127.0.0.1", 9),)
        # the route is in the router, not among topic records
        for node in testnet.nodes:
            assert node.store.records.get(hash32(ALICE.public_key), 20) == []

        name = await client.immutable_put(b"immutable")
        assert name == hash32(b"immutable")
        assert await testnet.nodes[0].immutable_get(name) == b"immutable"

        await client.mutable_put(ALICE, b"one", seq=1)
        with pytest.raises(SeqReusedError) as reused:
            await client.mutable_put(ALICE, b"uno", seq=1)
        assert reused.value.refusals == 3
        with pytest.raises(SeqTooLowError):
            await client.mutable_put(ALICE, b"zero", seq=0)
        await client.mutable_put(ALICE, b"one", seq=1)  # the same value again is fine
        await client.mutable_put(ALICE, b"two", seq=2)
        got = await testnet.nodes[1].mutable_get(ALICE.public_key)
        assert got is not None and (got.seq, got.value) == (2, b"two")
        assert await client.mutable_get(ALICE.public_key, seq=3) is None
        first = await client.mutable_get(ALICE.public_key, latest=False)
        assert first is not None and first.value == b"two"


async def test_a_client_checks_what_nodes_answer() -> None:
    """A node serving a forged mutable value or a wrong immutable value is ignored."""
    async with create_testnet(3) as testnet:
        client = await testnet.create_node()
        await client.mutable_put(ALICE, b"real", seq=1)
        liar = testnet.nodes[0]
        target = hash32(ALICE.public_key)
        forged = MutableGetResponse(9, b"forged", sign_mutable(BOB, 9, b"forged"))
        liar.store.mutables.set(target, encode_mutable_get_response(forged))
        got = await client.mutable_get(ALICE.public_key)
        assert got is not None and (got.seq, got.value) == (1, b"real")

        name = await client.immutable_put(b"genuine")
        for node in testnet.nodes:
            node.store.immutables.set(name, b"not the value of that hash")
        assert await client.immutable_get(name) is None


class GarbageServer(HyperDHT):
    """A persistent node whose LOOKUP and FIND_PEER replies are garbage."""

    def on_request(self, request: IncomingRequest) -> bool:
        if request.command in (Command.LOOKUP, Command.FIND_PEER):
            request.reply(b"\xff\xff garbage")
            return True
        return super().on_request(request)


async def test_garbage_replies_are_skipped() -> None:
    room = topic("garbage")
    async with (
        create_testnet(2) as testnet,
        GarbageServer(
            testnet.bootstrap, host="127.0.0.1", ephemeral=False, firewalled=False
        ) as bad,
    ):
        await bad.fully_bootstrapped()
        assert bad.id is not None
        async with HyperDHT(testnet.bootstrap, host="127.0.0.1", ephemeral=True) as client:
            await client.fully_bootstrapped()
            stored = await client.announce(room, ALICE)
            assert bad.address in stored  # it stores, it only answers garbage
            replies = [reply async for reply in client.lookup(room)]
            assert len(replies) == 2
            assert bad.address not in {r.from_address for r in replies}
            await client.announce(hash32(ALICE.public_key), ALICE)
            found = await client.find_peer(ALICE.public_key)
            assert found is not None and found.from_address != bad.address


async def test_an_ephemeral_node_stores_nothing() -> None:
    room = topic("ephemeral")
    async with create_testnet(2) as testnet:
        client = await testnet.create_node()
        other = await testnet.create_node()
        stored = await client.announce(room, ALICE)
        assert other.address not in stored and client.address not in stored
        assert len(other.store.records) == 0


async def test_api_arguments_are_checked() -> None:
    async with create_testnet(1) as testnet:
        node = testnet.nodes[0]
        with pytest.raises(ValueError, match="at most"):
            await node.immutable_put(bytes(MAX_VALUE_SIZE + 1))
        with pytest.raises(ValueError, match="at most"):
            await node.mutable_put(ALICE, bytes(MAX_MUTABLE_VALUE_SIZE + 1))
        with pytest.raises(ValueError, match="seq"):
            await node.mutable_put(ALICE, b"", seq=-1)
        with pytest.raises(TypeError):
            node.lookup("a name, not a topic")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await node.find_peer(b"short")


def test_public_bootstrap_is_upstreams_list() -> None:
    assert PUBLIC_BOOTSTRAP == (
        ("88.99.3.86", 49737),
        ("142.93.90.113", 49737),
        ("138.68.147.8", 49737),
    )
