"""DHTRPCNode among Python nodes on 127.0.0.1: joining, persistence, the internal commands,
queries with commit, the extension hook and relayed replies."""

from __future__ import annotations

import os
from contextlib import AsyncExitStack

import anyio
import pytest

from p2pswarm.errors import DHTError, DHTTimeoutError
from p2pswarm.hyperdht import DHTRPCNode
from p2pswarm.hyperdht.iterative import Query, auto_commit
from p2pswarm.hyperdht.routing import RoutingNode
from p2pswarm.hyperdht.rpc import IncomingRequest, Reply
from p2pswarm.protocol.compact import IPv4Address
from p2pswarm.protocol.dht_rpc import (
    ErrorCode,
    InternalCommand,
    Request,
    Response,
    encode_ipv4,
    node_id,
)

from .helpers import RawPeer, python_network, raw_peer

pytestmark = pytest.mark.anyio

ECHO = 100


def xor(a: bytes, b: bytes) -> int:
    return int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


async def test_nodes_become_persistent_and_find_each_other() -> None:
    async with python_network(6) as (boot, nodes):
        assert boot.id == node_id(*boot.address)
        for node in nodes:
            # The firewall test passed on loopback: id = H(the address others see).
            assert not node.ephemeral and not node.firewalled
            assert node.id == node_id(*node.address)
            assert node.public_address == node.address
        await boot.wait_until(lambda: len(boot.table) == 6)
        async with DHTRPCNode(bootstrap=[boot.address], host="127.0.0.1", ephemeral=True) as client:
            await client.fully_bootstrapped()
            assert client.id is None  # ephemeral: no id on the wire
            target = os.urandom(32)
            q = client.find_node(target)
            replies = [r async for r in q]
            everyone = [boot, *nodes]
            assert {r.from_.address for r in replies} <= {n.address for n in everyone}
            expected = sorted(everyone, key=lambda n: xor(n.table.id, target))
            assert [p.address for p in q.closest_nodes] == [n.address for n in expected]
        # The ephemeral client entered nobody's table.
        for node in everyone:
            assert client.address not in node.to_array()


async def test_internal_commands_as_dht_rpc_answers_them() -> None:
    async with python_network(1) as (boot, _), raw_peer() as raw, raw_peer() as other:
        to = raw.to(boot)
        pong = await raw.request(boot.address, Request(1, to, InternalCommand.PING, True))
        assert pong.error == 0 and pong.token is None and not pong.closer_nodes
        assert pong.to == raw.address and pong.id == boot.id

        target = os.urandom(32)
        find = await raw.request(
            boot.address, Request(2, to, InternalCommand.FIND_NODE, True, target=target)
        )
        assert find.error == 0 and len(find.closer_nodes) == 1

        unknown = await raw.request(boot.address, Request(3, to, 99, True, target=target))
        assert unknown.error == ErrorCode.UNKNOWN_COMMAND and find.closer_nodes

        not_served = await raw.request(boot.address, Request(4, to, 7))
        assert not_served.error == ErrorCode.UNKNOWN_COMMAND

        delayed = await raw.request(
            boot.address,
            Request(5, to, InternalCommand.DELAYED_PING, True, value=(50).to_bytes(4, "little")),
        )
        assert delayed.error == 0

        hint = await raw.request(
            boot.address,
            Request(6, to, InternalCommand.DOWN_HINT, True, value=bytes(6)),
        )
        assert hint.error == 0

        # PING_NAT is answered to the requester's host at the port it names.
        port = other.address[1].to_bytes(2, "little")
        await raw.send(
            Request(7, to, InternalCommand.PING_NAT, True, value=port).encode(), boot.address
        )
        reply, source = await other.receive()
        assert reply.tid == 7 and source == boot.address


async def test_ping_and_delayed_ping_from_the_client_side() -> None:
    async with python_network(1) as (boot, (node,)):
        reply = await node.ping(boot.address)
        assert reply.from_.id == boot.id and reply.to == node.address
        delayed = await node.delayed_ping(boot.address, 0.05)
        assert delayed.error == 0
        with pytest.raises(ValueError):
            await node.delayed_ping(boot.address, 11)


async def test_a_dead_node_times_out() -> None:
    async with python_network(0) as (boot, _), raw_peer() as silent:
        with pytest.raises(DHTTimeoutError):
            await boot.request(silent.address, 0, internal=True, retries=1, resend_after=0.05)


def echo_handler(request: IncomingRequest) -> bool:
    """Command 100: echo the value with a token; with a valid token, answer b"committed"."""
    if request.command != ECHO:
        return False
    request.reply(b"committed" if request.token is not None else request.value)
    return True


async def test_query_with_commit_uses_each_replys_token() -> None:
    network = python_network(4, request_handler=echo_handler)
    async with (
        network as (boot, _),
        DHTRPCNode(bootstrap=[boot.address], host="127.0.0.1") as client,
    ):
        await client.fully_bootstrapped()
        q = client.query(os.urandom(32), ECHO, value=b"hi", commit=auto_commit)
        replies = [r async for r in q]
        assert replies and all(r.value == b"hi" and r.token for r in replies)
        assert len(q.commits) == len(q.closest_replies) == 5
        assert all(isinstance(c, Reply) and c.value == b"committed" for c in q.commits)


async def test_commit_without_replies_fails() -> None:
    async with DHTRPCNode(host="127.0.0.1") as lonely:
        q = lonely.query(os.urandom(32), ECHO, commit=auto_commit)
        with pytest.raises(DHTError):
            await q.finished()


async def test_a_relayed_reply_is_accepted_only_when_asked_for() -> None:
    """A relays our request (same tid) to B, and B answers us directly (PEER_HANDSHAKE)."""
    async with python_network(2) as (boot, (a, b)):

        def relay(request: IncomingRequest) -> bool:
            request.relay(request.value, b.address)
            return True

        def answer(request: IncomingRequest) -> bool:
            request.reply(b"from b", to=_origin(request))  # to the original requester
            return True

        a.request_handler = relay
        b.request_handler = answer
        reply = await boot.request(a.address, 42, value=_encode(boot.address), any_responder=True)
        assert reply.value == b"from b" and reply.from_.address == b.address
        with pytest.raises(DHTTimeoutError):
            await boot.request(
                a.address, 42, value=_encode(boot.address), retries=0, resend_after=0.3
            )


def _encode(address: tuple[str, int]) -> bytes:
    return f"{address[0]}:{address[1]}".encode()


def _origin(request: IncomingRequest) -> tuple[str, int]:
    host, port = (request.value or b"").decode().rsplit(":", 1)
    return host, int(port)


async def test_requesters_enter_the_table_only_after_answering_a_ping() -> None:
    async with python_network(0) as (boot, _), raw_peer() as raw:
        host, port = raw.address
        ping = Request(9, raw.to(boot), InternalCommand.PING, True, id=node_id(host, port))
        await raw.send(ping.encode(), boot.address)
        # The node answers, then pings back before admitting us.
        while True:
            message, _ = await raw.receive()
            if isinstance(message, Request):
                break
        assert message.command == InternalCommand.PING and message.internal
        assert raw.address not in boot.to_array()
        await raw.send(
            Response(message.tid, IPv4Address(*boot.address), id=node_id(host, port)).encode(),
            boot.address,
        )
        await boot.wait_until(lambda: raw.address in boot.to_array())


async def test_a_query_can_be_cancelled() -> None:
    async with python_network(1) as (boot, _):
        q: Query = boot.find_node(os.urandom(32))
        q.start()
        q.cancel()
        with anyio.fail_after(5), pytest.raises(DHTError, match="cancelled"):
            await q.finished()


async def test_a_node_that_times_out_after_a_referral_is_hinted_down() -> None:
    """R names D as closer; D never answers; R then gets a DOWN_HINT carrying D's address."""
    async with DHTRPCNode(host="127.0.0.1") as node, raw_peer() as referrer:
        async with raw_peer() as gone:
            dead = gone.address  # closed below: nothing answers there
        target = os.urandom(32)
        q = node.query(
            target, InternalCommand.FIND_NODE, internal=True, nodes=[referrer.address], retries=0
        )
        q.start()
        message, _ = await referrer.receive()
        assert isinstance(message, Request) and message.command == InternalCommand.FIND_NODE
        closer = (IPv4Address(*dead),)
        own = node_id(*referrer.address)
        reply = Response(message.tid, IPv4Address(*node.address), id=own, closer_nodes=closer)
        await referrer.send(reply.encode(), node.address)
        hint, _ = await referrer.receive()
        assert isinstance(hint, Request)
        assert hint.internal and hint.command == InternalCommand.DOWN_HINT
        assert hint.value == encode_ipv4(*dead)
        await referrer.send(Response(hint.tid, IPv4Address(*node.address)).encode(), node.address)
        await q.finished()
        assert [r.from_.address for r in q.closest_replies] == [referrer.address]


async def test_an_adaptive_node_turns_persistent_once_stable() -> None:
    async with (
        python_network(2) as (boot, _),
        DHTRPCNode(bootstrap=[boot.address], host="127.0.0.1") as node,
    ):
        await node.fully_bootstrapped()
        assert node.adaptive and node.ephemeral
        for _ in range(240):  # ~20 minutes of 5-second ticks
            node._on_tick()
        await node.wait_until(lambda: not node.ephemeral)
        assert node.id == node_id(*node.address)
        await boot.wait_until(lambda: node.address in boot.to_array())


async def test_requests_can_leave_from_either_socket() -> None:
    async with python_network(0) as (boot, _), DHTRPCNode(host="127.0.0.1") as node:
        assert node.client_address is not None and node.client_address != node.address
        via_client = await node.ping(boot.address)
        assert via_client.to == node.client_address  # firewalled: the client socket
        via_server = await node.request(
            boot.address, InternalCommand.PING, internal=True, from_client=False
        )
        assert via_server.to == node.address


async def test_bootstrap_names_resolve_as_js_does() -> None:
    async with python_network(0) as (boot, _):
        port = boot.address[1]
        listed = [("localhost", port), ("127.0.0.1@bootstrap.invalid", port), ("no.invalid", 1)]
        async with DHTRPCNode(bootstrap=listed, host="127.0.0.1") as node:
            await node.fully_bootstrapped()
            # The IP of "ip@name" is used as is, names go through the resolver; one entry
            # per address.
            assert [p.address for p in node.bootstrap_peers()] == [("127.0.0.1", port)]
            assert boot.address in node.to_array()


async def _two_in_one_row(stack: AsyncExitStack, table_id: bytes) -> tuple[RawPeer, RawPeer]:
    """Two raw peers whose ids fall in the same row of a table with ``table_id``."""
    rows: dict[int, RawPeer] = {}
    for _ in range(64):
        peer = await stack.enter_async_context(raw_peer())
        distance = int.from_bytes(node_id(*peer.address), "big") ^ int.from_bytes(table_id, "big")
        row = 256 - distance.bit_length()
        if row in rows:
            return rows[row], peer
        rows[row] = peer
    raise AssertionError("no two peers in one row")


@pytest.mark.parametrize("alive", [True, pytest.param(False, marks=pytest.mark.slow)])
async def test_a_full_row_pings_its_oldest_node_and_swaps_it_only_if_gone(alive: bool) -> None:
    async with DHTRPCNode(host="127.0.0.1", k=1) as node, AsyncExitStack() as stack:
        await node.fully_bootstrapped()
        old, new = await _two_in_one_row(stack, node.table.id)
        node.add_node(*old.address)
        node._tick += 1  # the row's node was not pinged in this tick
        node._add_node(RoutingNode(node_id(*new.address), *new.address))
        ping, _ = await old.receive()
        assert isinstance(ping, Request) and ping.command == InternalCommand.PING
        if alive:
            pong = Response(ping.tid, IPv4Address(*node.address), id=node_id(*old.address))
            await old.send(pong.encode(), node.address)
            await node.wait_until(lambda: node._repinging == 0)
            assert node.to_array() == [old.address]
        else:
            await node.wait_until(lambda: node.to_array() == [new.address])
