"""The Python blind relay with Python clients on real sockets: pairing, bytes both ways, a
secret stream end to end through the relay (which never holds its keys), unpair and close
propagation, and hostile clients: unknown tokens, duplicate sides, pair floods, expiry,
malformed messages. Each hostile case checks the relay's state stays bounded and an honest
pair next to it still works."""

from __future__ import annotations

import os

import anyio
import pytest

from p2pswarm.errors import RelayPairingError
from p2pswarm.keys import KeyPair
from p2pswarm.relay import BlindRelayClient, RelayLimits
from p2pswarm.transports._handshake import initiate_handshake
from p2pswarm.transports.udx import UDXStream, accept_udx

from .helpers import Relay, announce, read_all, relay_with_clients

pytestmark = pytest.mark.anyio

LIMIT = 20


async def paired(relay: Relay, token: bytes, a: int = 0, b: int = 1) -> tuple[UDXStream, UDXStream]:
    """Pair client ``a`` (initiator) and ``b`` under ``token``; connected, announced streams."""
    sa, sb = relay.sockets[a].create_stream(), relay.sockets[b].create_stream()
    ids: dict[int, int] = {}

    async def pair(i: int, client: BlindRelayClient, initiator: bool, s: UDXStream) -> None:
        ids[i] = await client.pair(initiator, token, s)

    async with anyio.create_task_group() as tg:
        tg.start_soon(pair, a, relay.clients[a], True, sa)
        tg.start_soon(pair, b, relay.clients[b], False, sb)
    sa.connect(ids[a], *relay.address)
    sb.connect(ids[b], *relay.address)
    await announce(sa, sb)
    return sa, sb


async def exchange(sa: UDXStream, sb: UDXStream, size: int = 100_000) -> None:
    data_a, data_b = os.urandom(size), os.urandom(size // 2)
    got: dict[str, bytes] = {}

    async def side(name: str, s: UDXStream, data: bytes) -> None:
        async def send() -> None:
            await s.send(data)
            await s.send_eof()

        async with anyio.create_task_group() as tg:
            tg.start_soon(send)
            got[name] = await read_all(s)

    async with anyio.create_task_group() as tg:
        tg.start_soon(side, "a", sa, data_a)
        tg.start_soon(side, "b", sb, data_b)
    assert got == {"a": data_b, "b": data_a}


async def test_a_pair_relays_bytes_both_ways_and_unpair_closes_both_ends() -> None:
    async with relay_with_clients() as relay:
        with anyio.fail_after(LIMIT):
            token = os.urandom(32)
            sa, sb = await paired(relay, token)
            assert relay.server.stats.matched == 1 and relay.server.pending == 0
            assert relay.server.links == 2
            await exchange(sa, sb)
            # A second pair on the same connections, then cancelled by one side.
            token2 = os.urandom(32)
            await paired(relay, token2)
            relay.clients[1].unpair(token2)
            await relay.server.wait_until(lambda r: r.links <= 2 and r.stats.cancelled >= 1)
            # The relay streams are gone: what the ends send now reaches nobody.
            assert relay.server.stats.cancelled == 1


async def test_the_secret_stream_runs_end_to_end_through_the_relay() -> None:
    async with relay_with_clients() as relay:
        with anyio.fail_after(LIMIT):
            sa, sb = await paired(relay, os.urandom(32))
            ka, kb = KeyPair.generate(), KeyPair.generate()
            conns = {}

            async def initiator() -> None:
                conns["a"] = await initiate_handshake(
                    sa, key_pair=ka, remote_public_key=kb.public_key, remote_address=relay.address
                )

            async def responder() -> None:
                conns["b"] = await accept_udx(sb, key_pair=kb)

            async with anyio.create_task_group() as tg:
                tg.start_soon(initiator)
                tg.start_soon(responder)
            a, b = conns["a"], conns["b"]
            assert a.remote_public_key == kb.public_key and b.remote_public_key == ka.public_key
            await a.send(b"through the relay")
            assert await b.receive() == b"through the relay"
            await b.send(b"and back")
            assert await a.receive() == b"and back"
            await a.aclose()
            await b.aclose()


async def test_client_errors_are_typed() -> None:
    async with relay_with_clients() as relay:
        with anyio.fail_after(LIMIT):
            client = relay.clients[0]
            stream = relay.sockets[0].create_stream()
            token = os.urandom(32)
            async with anyio.create_task_group() as tg:

                async def waiting() -> None:
                    with pytest.raises(RelayPairingError, match="cancelled"):
                        await client.pair(True, token, stream)

                tg.start_soon(waiting)
                await relay.server.wait_until(lambda r: r.pending > 0)
                with pytest.raises(RelayPairingError, match="already pairing"):
                    await client.pair(True, token, stream)
                client.unpair(token)
            await relay.server.wait_until(lambda r: r.pending == 0)
            with pytest.raises(RelayPairingError, match="did not pair"):
                await client.pair(True, os.urandom(32), stream, within=0.05)
            with pytest.raises(ValueError):
                await client.pair(True, b"short", stream)


async def test_a_closed_relay_channel_fails_the_pending_pairing() -> None:
    async with relay_with_clients() as relay:
        with anyio.fail_after(LIMIT):
            client = relay.clients[0]
            stream = relay.sockets[0].create_stream()
            async with anyio.create_task_group() as tg:

                async def waiting() -> None:
                    with pytest.raises(RelayPairingError, match="closed"):
                        await client.pair(True, os.urandom(32), stream)

                tg.start_soon(waiting)
                await relay.server.wait_until(lambda r: r.pending > 0)
                relay.server.close()
            assert relay.server.pending == 0
            with pytest.raises(RelayPairingError):
                await client.pair(True, os.urandom(32), stream)


async def test_unknown_tokens_and_duplicate_sides_change_nothing() -> None:
    async with relay_with_clients(3) as relay:
        with anyio.fail_after(LIMIT):
            hostile = relay.clients[2]
            hostile.unpair(os.urandom(32))  # nobody's token
            token = os.urandom(32)
            s = relay.sockets[2].create_stream()
            core, state = hostile.mux._core, hostile.channel._state
            from p2pswarm.protocol.blind_relay import Pair, encode_pair

            for _ in range(5):  # the same side of one token, again and again
                core.send(state, 0, encode_pair(Pair(True, token, s.id)))
            hostile.mux._local_change()
            await hostile.mux.flush()
            await relay.server.wait_until(lambda r: r.stats.requested >= 1)
            assert relay.server.pending == 1
            sa, sb = await paired(relay, os.urandom(32))
            await exchange(sa, sb, 20_000)
            assert relay.server.pending == 1 and relay.server.stats.requested == 3


async def test_a_pair_flood_is_capped_per_connection_and_others_still_pair() -> None:
    limits = RelayLimits(max_pending=16, max_pending_per_session=4)
    async with relay_with_clients(3, limits=limits) as relay:
        with anyio.fail_after(LIMIT):
            hostile = relay.clients[2]
            core, state = hostile.mux._core, hostile.channel._state
            from p2pswarm.protocol.blind_relay import Pair, encode_pair

            for i in range(200):
                core.send(state, 0, encode_pair(Pair(bool(i & 1), os.urandom(32), i)))
            hostile.mux._local_change()
            await hostile.mux.flush()
            await relay.server.wait_until(lambda r: r.stats.refused >= 196)
            assert relay.server.pending == 4
            sa, sb = await paired(relay, os.urandom(32))
            await exchange(sa, sb, 20_000)
            # Closing the flooder's connection forgets its pendings.
            await hostile.mux.connection.aclose()
            await relay.server.wait_until(lambda r: r.pending == 0)
            assert relay.server.links == 2


async def test_pending_pairings_expire_on_the_injected_clock() -> None:
    now = [0.0]
    async with relay_with_clients(2, clock=lambda: now[0]) as relay:
        with anyio.fail_after(LIMIT):
            client = relay.clients[0]
            stream = relay.sockets[0].create_stream()
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: client.pair(True, os.urandom(32), stream, within=0.5))
                await relay.server.wait_until(lambda r: r.pending > 0)
                assert relay.server.expire() == 0
                now[0] = 15.0
                assert relay.server.expire() == 1
                tg.cancel_scope.cancel()
            assert relay.server.pending == 0 and relay.server.stats.expired == 1


async def test_a_malformed_pair_drops_that_connection_only() -> None:
    async with relay_with_clients(3) as relay:
        with anyio.fail_after(LIMIT):
            hostile = relay.clients[2]
            core, state = hostile.mux._core, hostile.channel._state
            core.send(state, 0, b"\x01" + bytes(31))  # a truncated token
            hostile.mux._local_change()
            await relay.server_muxes[2].wait_closed()
            assert relay.server_muxes[2].error is not None
            sa, sb = await paired(relay, os.urandom(32))
            await exchange(sa, sb, 20_000)
