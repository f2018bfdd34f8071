"""Hole punching on loopback: two firewalled nodes (ephemeral, so neither is reachable as
far as the DHT knows) connect through PEER_HOLEPUNCH rounds relayed by a Python testnet.
Loopback cannot NAT, and the nodes' own firewall test finds them reachable, so the test
declares them firewalled (what a NAT would have made them); every node then sees the same
127.0.0.1:port of each puncher socket, so both sides classify as
CONSISTENT and punch straight through: this proves the message exchange, the sealed
payloads and the stream moving onto the puncher's socket; the NAT lab proves the NATs."""

from __future__ import annotations

import contextlib

import anyio
import pytest

from p2pswarm.errors import DHTError
from p2pswarm.hyperdht import create_testnet
from p2pswarm.hyperdht.records import hash32
from p2pswarm.hyperdht.server_punch import MAX_SESSIONS
from p2pswarm.keys import KeyPair
from p2pswarm.protocol.compact import IPv4Address
from p2pswarm.protocol.hyperdht_connect import Firewall, HandshakeMode
from p2pswarm.protocol.hyperdht_holepunch import (
    Holepunch,
    HolepunchPayload,
    SecurePayload,
    encode_holepunch,
)
from p2pswarm.protocol.hyperdht_messages import Command
from tests.hyperdht.test_connect import echo, roundtrip

pytestmark = pytest.mark.anyio

SERVER = KeyPair.from_seed(b"h" * 32)


async def test_two_firewalled_nodes_connect_by_hole_punching() -> None:
    async with create_testnet(5) as testnet:
        server_node = await testnet.create_node()
        client = await testnet.create_node()
        server_node.firewalled = client.firewalled = True
        server = server_node.create_server(echo)
        await server.listen(SERVER)
        assert server_node.remote_address() is None and client.remote_address() is None
        with anyio.fail_after(20):
            connection = await client.connect(SERVER.public_key)
        async with connection:
            assert await roundtrip(connection, b"punched") == b"punched"
        assert server.punches.stats["rounds"] >= 1  # the fast-open probe may win at once
        assert server.punches.stats["forged"] == 0
        await server.aclose()


async def test_forged_unknown_and_garbage_rounds_leave_no_state() -> None:
    """A flood of PEER_HOLEPUNCH rounds for sessions that do not exist, sealed under the
    wrong secret, or undecodable: each is dropped (counted), no session or socket is made,
    and an honest client still punches through afterwards."""
    async with create_testnet(5) as testnet:
        server_node = await testnet.create_node()
        client = await testnet.create_node()
        attacker = await testnet.create_node()
        server_node.firewalled = client.firewalled = True
        server = server_node.create_server(echo)
        await server.listen(SERVER)
        target = hash32(SERVER.public_key)
        wrong = SecurePayload(bytes(32)).encrypt(HolepunchPayload(punching=True))
        me = IPv4Address("127.0.0.1", attacker.address[1])
        to = server_node.address
        values = [b"\xff" * 9, b"", b"\x01\x02"] + [
            encode_holepunch(Holepunch(HandshakeMode.FROM_RELAY, sid, wrong, me))
            for sid in range(40)
        ]
        for value in values:
            with anyio.move_on_after(0.2), contextlib.suppress(DHTError):
                await attacker.request(
                    to, Command.PEER_HOLEPUNCH, target=target, value=value, retries=0
                )
        assert server_node.bad_holepunches >= 2
        assert server.punches.stats["unknown"] >= 40
        assert not server.punches.sessions
        assert server_node.socket_pool.open == 0
        with anyio.fail_after(20):
            connection = await client.connect(SERVER.public_key)
        async with connection:
            assert await roundtrip(connection, b"still works") == b"still works"
        await server.aclose()


async def test_a_round_sealed_for_another_session_is_dropped() -> None:
    """A replay of a session's round into another live session does not open there."""
    async with create_testnet(5) as testnet:
        server_node = await testnet.create_node()
        server_node.firewalled = True
        server = server_node.create_server(echo)
        await server.listen(SERVER)
        sessions = server.punches
        a = sessions.open(Firewall.CONSISTENT)
        b = sessions.open(Firewall.CONSISTENT)
        assert a is not None and b is not None and a.id != b.id
        a.secure = SecurePayload(bytes([1]) * 32)
        b.secure = SecurePayload(bytes([2]) * 32)
        sealed = a.secure.encrypt(HolepunchPayload(round=1))
        peer = IPv4Address("127.0.0.1", 9)
        attacker = await testnet.create_node()
        value = encode_holepunch(Holepunch(HandshakeMode.FROM_RELAY, b.id, sealed, peer))
        with anyio.move_on_after(0.3), contextlib.suppress(DHTError):
            await attacker.request(
                server_node.address,
                Command.PEER_HOLEPUNCH,
                target=hash32(SERVER.public_key),
                value=value,
                retries=0,
            )
        assert sessions.stats["forged"] == 1 and sessions.stats["rounds"] == 0
        assert len(sessions.sessions) == 2
        await server.aclose()
        assert not sessions.sessions


async def test_sessions_are_bounded() -> None:
    async with create_testnet(3) as testnet:
        node = await testnet.create_node()
        node.firewalled = True
        server = node.create_server(echo)
        opened = [server.punches.open(Firewall.CONSISTENT) for _ in range(MAX_SESSIONS + 5)]
        assert sum(s is not None for s in opened) == MAX_SESSIONS
        await server.aclose()
        assert not server.punches.sessions
