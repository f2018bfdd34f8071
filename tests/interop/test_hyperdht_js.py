"""Python and JS HyperDHT nodes form one DHT: each finds, stores and answers for the other.

Every JS node runs in a ``hyperdht_node.js`` subprocess on 127.0.0.1 with kernel-picked
ports; every test waits on answers, never on time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from p2pswarm.hyperdht import HyperDHT, create_testnet
from p2pswarm.hyperdht.records import hash32
from p2pswarm.keys import KeyPair, topic
from p2pswarm.protocol.compact import IPv4Address

from ._hyperdht_js import SKIP_REASON, JsHyperDHT, js_hyperdht

pytestmark = [
    pytest.mark.interop,
    pytest.mark.anyio,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

SEED = bytes(range(32))
KEYS = KeyPair.from_seed(SEED)


@contextlib.asynccontextmanager
async def python_client(bootstrap: list[tuple[str, int]]) -> AsyncIterator[HyperDHT]:
    async with HyperDHT(bootstrap, host="127.0.0.1", ephemeral=True) as dht:
        await dht.fully_bootstrapped()
        yield dht


async def lookup_keys(dht: HyperDHT, target: bytes) -> list[bytes]:
    return [peer.public_key async for reply in dht.lookup(target) for peer in reply.peers]


async def js_lookup_keys(js: JsHyperDHT, target: bytes) -> list[bytes]:
    answer = await js.call("lookup", topic=target.hex())
    return [bytes.fromhex(p["publicKey"]) for p in answer["peers"]]


async def test_python_finds_what_js_announced_and_js_what_python_announced() -> None:
    room = topic("interop: both ways")
    async with js_hyperdht(testnet=4) as js, python_client(js.bootstrap) as dht:
        relays = [{"host": "127.0.0.1", "port": 4000 + i} for i in range(5)]
        await js.call("announce", topic=room.hex(), seed=SEED.hex(), relays=relays)
        replies = [reply async for reply in dht.lookup(room)]
        # the JS testnet's first node stays ephemeral: the other three store
        assert len(replies) >= 3
        for reply in replies:
            assert [p.public_key for p in reply.peers] == [KEYS.public_key]
            # stored by JS nodes with the relays truncated to three
            expected = tuple(IPv4Address("127.0.0.1", 4000 + i) for i in range(3))
            assert reply.peers[0].relay_addresses == expected

        ours = KeyPair.from_seed(b"p" * 32)
        stored_at = await dht.announce(room, ours, [("127.0.0.1", 5555)])
        assert len(stored_at) >= 3
        found = await js.call("lookup", topic=room.hex())
        keys = {bytes.fromhex(p["publicKey"]) for p in found["peers"]}
        assert keys == {KEYS.public_key, ours.public_key}
        mine = [p for p in found["peers"] if bytes.fromhex(p["publicKey"]) == ours.public_key]
        assert mine[0]["relayAddresses"] == [{"host": "127.0.0.1", "port": 5555}]

        await dht.unannounce(room, ours)
        assert set(await js_lookup_keys(js, room)) == {KEYS.public_key}
        await js.call("unannounce", topic=room.hex(), seed=SEED.hex())
        assert await lookup_keys(dht, room) == []


async def test_a_python_node_in_the_middle_stores_and_answers_for_js() -> None:
    room = topic("interop: python in the middle")
    async with (
        js_hyperdht(testnet=3) as js,
        HyperDHT(js.bootstrap, host="127.0.0.1", ephemeral=False, firewalled=False) as py,
    ):
        await py.fully_bootstrapped()
        assert py.id is not None
        host, port = py.address
        # JS nodes took it into their routing tables (it proved its id)
        tables = await js.call("tables", host=host, port=port)
        assert any(tables["has"])
        await js.call("announce", topic=room.hex(), seed=SEED.hex())
        assert py.store.records.get(room, 20) != []
        found = await js.call("lookup", topic=room.hex())
        answered = [r for r in found["replies"] if (r["host"], r["port"]) == (host, port)]
        assert answered == [{"host": host, "port": port, "peers": 1}]

        value = b"stored by python, read by js"
        await js.call("immutablePut", value=value.hex())
        assert py.store.immutables.get(hash32(value)) == value
        await js.call("mutablePut", seed=SEED.hex(), value=b"m".hex(), seq=3)
        got = await js.call("mutableGet", publicKey=KEYS.public_key.hex())
        assert (got["seq"], bytes.fromhex(got["value"])) == (3, b"m")
        assert py.store.mutables.get(hash32(KEYS.public_key)) is not None


async def test_a_python_node_is_the_only_bootstrap_of_js_nodes() -> None:
    room = topic("interop: python bootstrap")
    async with (
        create_testnet(1) as testnet,
        js_hyperdht(nodes=4, bootstrap=testnet.bootstrap) as js,
    ):
        # every JS node joined through the Python node and became persistent
        assert all(node["id"] is not None for node in js.nodes)
        await js.call("announce", topic=room.hex(), seed=SEED.hex())
        assert KEYS.public_key in await js_lookup_keys(js, room)
        async with python_client(testnet.bootstrap) as dht:
            replies = [reply async for reply in dht.lookup(room)]
            # four JS nodes and the Python bootstrapper hold the record
            assert len(replies) == 5
            assert all(r.peers[0].public_key == KEYS.public_key for r in replies)


async def test_values_put_in_one_language_are_got_in_the_other() -> None:
    async with js_hyperdht(testnet=4) as js, python_client(js.bootstrap) as dht:
        # immutable: Python puts, JS gets; JS puts, Python gets
        mine = b"immutable from python"
        assert await dht.immutable_put(mine) == hash32(mine)
        got = await js.call("immutableGet", hash=hash32(mine).hex())
        assert bytes.fromhex(got["value"]) == mine
        theirs = b"immutable from js"
        answer = await js.call("immutablePut", value=theirs.hex())
        assert await dht.immutable_get(bytes.fromhex(answer["hash"])) == theirs
        assert await dht.immutable_get(hash32(b"never stored")) is None

        # mutable: Python puts, JS gets and verifies; JS puts a newer one, Python gets it
        owner = KeyPair.from_seed(SEED)
        await dht.mutable_put(owner, b"v1 from python", seq=1)
        got = await js.call("mutableGet", publicKey=owner.public_key.hex())
        assert (got["seq"], bytes.fromhex(got["value"])) == (1, b"v1 from python")
        await js.call("mutablePut", seed=SEED.hex(), value=b"v2 from js".hex(), seq=2)
        value = await dht.mutable_get(owner.public_key)
        assert value is not None and (value.seq, value.value) == (2, b"v2 from js")
        assert await dht.mutable_get(owner.public_key, seq=3) is None


async def test_js_find_peer_finds_a_python_server_announcing_itself() -> None:
    server = KeyPair.from_seed(b"s" * 32)
    async with js_hyperdht(testnet=4) as js, python_client(js.bootstrap) as dht:
        relays = [("127.0.0.1", 7001)]
        stored_at = await dht.announce(hash32(server.public_key), server, relays)
        assert stored_at
        found = await js.call("findPeer", publicKey=server.public_key.hex())
        assert found["peer"] == {
            "publicKey": server.public_key.hex(),
            "relayAddresses": [{"host": "127.0.0.1", "port": 7001}],
        }
        # and Python finds it too
        reply = await dht.find_peer(server.public_key)
        assert reply is not None and reply.relay_addresses == (IPv4Address("127.0.0.1", 7001),)
        assert await dht.find_peer(KEYS.public_key) is None
