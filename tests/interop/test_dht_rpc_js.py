"""DHTRPCNode in one network with the real JS dht-rpc and HyperDHT on 127.0.0.1: JS nodes
admit it to their routing tables, our queries converge across JS nodes, JS queries (with
commit) are answered by Python nodes, and each side bootstraps the other."""

from __future__ import annotations

import os
from contextlib import AsyncExitStack

import anyio
import pytest

from p2pswarm.hyperdht import DHTRPCNode
from p2pswarm.hyperdht.rpc import IncomingRequest
from p2pswarm.protocol.dht_rpc import node_id

from ..hyperdht.helpers import python_network
from ._dht_js import SKIP_REASON, js_network

pytestmark = [
    pytest.mark.interop,
    pytest.mark.anyio,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

LOCAL = "127.0.0.1"


def xor(a: bytes, b: bytes) -> int:
    return int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


def by_distance(addresses: list[tuple[str, int]], target: bytes) -> list[tuple[str, int]]:
    return sorted(addresses, key=lambda a: xor(node_id(*a), target))


async def test_js_network_admits_our_node_and_our_queries_converge() -> None:
    async with js_network() as js:
        boot = await js.start(bootstrapper=True)
        bootstrap = [[LOCAL, boot["port"]]]
        started = [boot] + [
            await js.start(kind=kind, bootstrap=bootstrap, ephemeral=False)
            for kind in ("dht-rpc", "dht-rpc", "dht-rpc", "hyperdht")
        ]
        persistent = [(LOCAL, s["port"]) for s in started if s["id"] is not None]
        assert len(persistent) == 5

        async with DHTRPCNode(bootstrap=[(LOCAL, boot["port"])], host=LOCAL, ephemeral=False) as py:
            with anyio.fail_after(30):
                await py.fully_bootstrapped()
            assert not py.ephemeral and py.id == node_id(*py.address)
            # Every JS node, HyperDHT's included, took us into its routing table...
            for s in started:
                await js.call(op="waitFor", i=s["i"], node=list(py.address))
            # ...and a JS walk finds us.
            target = os.urandom(32)
            found = await js.call(op="findNode", i=1, target=target.hex())
            closest = [tuple(a) for a in found["closest"]]
            assert py.address in closest
            others = [a for a in persistent if a[1] != started[1]["port"]]  # a walk skips itself
            assert closest == by_distance([*others, py.address], target)
            pong = await js.call(op="ping", i=2, to=list(py.address))
            assert pong["id"] == py.id.hex() and pong["to"][1] == started[2]["port"]

            # Our walk over the JS nodes converges on the same closest set.
            await py.wait_until(lambda: len(py.table) == 5)
            q = py.find_node(target)
            await q.finished()
            assert [p.address for p in q.closest_nodes] == by_distance(persistent, target)


async def test_our_nodes_answer_js_queries_with_commit() -> None:
    def echo(request: IncomingRequest) -> bool:
        if request.command != 100:
            return False
        request.reply(b"committed" if request.token is not None else request.value)
        return True

    async with python_network(3, request_handler=echo) as (boot, nodes), js_network() as js:
        client = await js.start(kind="dht-rpc", bootstrap=[list(boot.address)])
        assert client["id"] is None  # an ephemeral JS client
        target = os.urandom(32)
        out = await js.call(
            op="query", i=client["i"], target=target.hex(), command=100, value="aa", commit=True
        )
        everyone = [boot.address, *(n.address for n in nodes)]
        assert {tuple(r[:2]) for r in out["replies"]} == set(everyone)
        assert all(r[2] == "aa" for r in out["replies"])
        assert [tuple(a) for a in out["closest"]] == by_distance(everyone, target)


async def test_our_node_as_the_only_bootstrap_of_js_nodes() -> None:
    async with python_network(0) as (boot, _), js_network() as js:
        bootstrap = [list(boot.address)]
        started = [
            await js.start(kind=kind, bootstrap=bootstrap, ephemeral=False)
            for kind in ("dht-rpc", "dht-rpc", "hyperdht")
        ]
        # Our PING_NAT answers let each pass its firewall test and become persistent.
        assert all(s["id"] is not None for s in started)
        addresses = [(LOCAL, s["port"]) for s in started]
        await boot.wait_until(lambda: all(a in boot.to_array() for a in addresses))
        for s in started:
            table = await js.call(op="waitFor", i=s["i"], node=list(boot.address))
            assert list(boot.address) in table["nodes"]
        # Through us, the JS nodes find one another.
        target = os.urandom(32)
        found = await js.call(op="findNode", i=started[0]["i"], target=target.hex())
        closest = [tuple(a) for a in found["closest"]]
        assert set(closest) == {boot.address, *addresses[1:]}


async def test_a_python_network_bootstrapped_from_js() -> None:
    """JS bootstrap, Python nodes only after it: they find each other through JS."""
    async with js_network() as js, AsyncExitStack() as stack:
        boot = await js.start(bootstrapper=True)
        nodes = []
        for _ in range(3):
            node = DHTRPCNode(bootstrap=[(LOCAL, boot["port"])], host=LOCAL, ephemeral=False)
            await stack.enter_async_context(node)
            with anyio.fail_after(30):
                await node.fully_bootstrapped()
            nodes.append(node)
        last = nodes[-1]
        await last.wait_until(lambda: all(n.address in last.to_array() for n in nodes[:-1]))
        table = await js.table(boot["i"])
        assert {tuple(a) for a in table["nodes"]} == {n.address for n in nodes}
