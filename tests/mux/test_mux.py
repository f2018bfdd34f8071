"""The Mux over real connections: pairing, messages, reject, close, cork, back-pressure."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from p2pswarm.errors import ChannelClosedError
from p2pswarm.mux import JSON, RAW, UINT, Channel, Mux

from .helpers import mux_pair

pytestmark = pytest.mark.anyio

TIMEOUT = 10


async def test_channels_pair_on_protocol_and_id_and_carry_typed_messages() -> None:
    async with mux_pair() as (a, b, tg, _):
        got: list[Any] = []
        done = anyio.Event()

        def on_json(value: Any, channel: Channel) -> None:
            got.append(value)
            if len(got) == 2:
                done.set()

        ca = a.create_channel("test", b"id", handshake=JSON, messages=[JSON, RAW])
        cb = b.create_channel("test", b"id", handshake=JSON, messages=[(JSON, on_json), RAW])
        assert ca is not None and cb is not None
        ca.open({"side": "a"})
        cb.open({"side": "b"})
        tg.start_soon(a.run)
        tg.start_soon(b.run)
        with anyio.fail_after(TIMEOUT):
            assert await ca.fully_opened()
            assert await cb.fully_opened()
            assert ca.handshake == {"side": "b"} and cb.handshake == {"side": "a"}
            await ca.messages[0].send({"n": 1})
            await ca.messages[1].send(b"raw bytes")
            await ca.messages[0].send([2])
            assert await cb.messages[1].receive() == b"raw bytes"
            await done.wait()
        assert got == [{"n": 1}, [2]]


async def test_an_open_nobody_pairs_is_rejected() -> None:
    async with mux_pair() as (a, b, tg, _):
        closed: list[bool] = []
        ca = a.create_channel("nobody-here", on_close=lambda remote, ch: closed.append(remote))
        assert ca is not None
        ca.open()
        tg.start_soon(a.run)
        tg.start_soon(b.run)
        with anyio.fail_after(TIMEOUT):
            assert not await ca.fully_opened()
            await ca.wait_closed()
        assert closed == [True]
        with pytest.raises(ChannelClosedError):
            ca.add_message(RAW).send_nowait(b"x")


async def test_pair_notify_creates_the_channel_and_gets_buffered_messages() -> None:
    async with mux_pair() as (a, b, tg, _):
        ca = a.create_channel("lazy", b"k", messages=[UINT])
        assert ca is not None
        ca.open()
        for n in range(5):
            ca.messages[0].send_nowait(n)
        created: list[Channel] = []
        made = anyio.Event()

        def notify(id: bytes | None) -> None:
            assert id == b"k"
            cb = b.create_channel("lazy", id, messages=[UINT])
            assert cb is not None
            cb.open()
            created.append(cb)
            made.set()

        b.pair("lazy", notify)
        tg.start_soon(a.run)
        tg.start_soon(b.run)
        with anyio.fail_after(TIMEOUT):
            assert await ca.fully_opened()
            while not created:
                await anyio.lowlevel.checkpoint()
            (cb,) = created
            assert [await cb.messages[0].receive() for _ in range(5)] == [0, 1, 2, 3, 4]


async def test_close_reaches_the_other_side_and_ends_iteration() -> None:
    async with mux_pair() as (a, b, tg, _):
        ca = a.create_channel("c", messages=[RAW])
        cb = b.create_channel("c", messages=[RAW])
        assert ca and cb
        ca.open()
        cb.open()
        tg.start_soon(a.run)
        tg.start_soon(b.run)
        with anyio.fail_after(TIMEOUT):
            assert await cb.fully_opened()
            await ca.messages[0].send(b"1")
            await ca.messages[0].send(b"2")
            ca.close()
            assert [m async for m in cb.messages[0]] == [b"1", b"2"]
            await cb.wait_closed()
        assert cb.closed_by_remote is True and ca.closed_by_remote is False
        # The id is free again: a new channel of the same protocol pairs anew.
        ca2 = a.create_channel("c", messages=[RAW])
        cb2 = b.create_channel("c", messages=[RAW])
        assert ca2 and cb2
        ca2.open()
        cb2.open()
        with anyio.fail_after(TIMEOUT):
            assert await ca2.fully_opened() and await cb2.fully_opened()


async def test_corked_messages_arrive_in_order_across_channels() -> None:
    async with mux_pair() as (a, b, tg, _):
        pairs = []
        for name in ("x", "y"):
            ca = a.create_channel(name, messages=[UINT])
            cb = b.create_channel(name, messages=[UINT])
            assert ca and cb
            ca.open()
            cb.open()
            pairs.append((ca, cb))
        tg.start_soon(a.run)
        tg.start_soon(b.run)
        with anyio.fail_after(TIMEOUT):
            for ca, _cb in pairs:
                assert await ca.fully_opened()
            with a.corked():
                for n in range(10):
                    pairs[n % 2][0].messages[0].send_nowait(n)
            await a.flush()
            xs = [await pairs[0][1].messages[0].receive() for _ in range(5)]
            ys = [await pairs[1][1].messages[0].receive() for _ in range(5)]
        assert xs == [0, 2, 4, 6, 8] and ys == [1, 3, 5, 7, 9]


async def test_connection_end_closes_every_channel_as_remote() -> None:
    async with mux_pair() as (a, b, tg, (ca_conn, _)):
        ca = a.create_channel("c")
        cb = b.create_channel("c")
        assert ca and cb
        ca.open()
        cb.open()
        tg.start_soon(a.run)
        tg.start_soon(b.run)
        with anyio.fail_after(TIMEOUT):
            assert await cb.fully_opened()
            await ca_conn.aclose()
            await cb.wait_closed()
            await a.wait_closed()
        assert cb.closed_by_remote is True and a.closed and b.closed


async def test_mux_of_returns_the_connections_mux() -> None:
    async with mux_pair() as (a, _b, _tg, (ca_conn, _)):
        assert Mux.of(ca_conn) is a
        with pytest.raises(ValueError):
            Mux(ca_conn)


async def test_async_with_runs_the_mux_and_closes_its_channels() -> None:
    async with mux_pair() as (a, b, tg, _):
        cb = b.create_channel("w", messages=[UINT])
        assert cb
        cb.open()
        tg.start_soon(b.run)
        async with a:
            ca = a.create_channel("w", messages=[UINT])
            assert ca
            ca.open()
            with anyio.fail_after(TIMEOUT):
                assert await ca.fully_opened()
                assert ca.drained
                await ca.messages[0].send(5)
                assert await cb.messages[0].receive() == 5
        with anyio.fail_after(TIMEOUT):
            await cb.wait_closed()  # leaving the block closed a's channels
        assert cb.closed_by_remote is True and a.closed


async def test_swarm_mux_shares_one_mux_per_connection_between_protocols() -> None:
    from p2pswarm import topic
    from p2pswarm.mux import SwarmMux

    from ..swarm.helpers import swarm_net

    async with swarm_net(2, watch=False) as ((s1, s2), _, _b):
        opened: list[str] = []
        all_open = anyio.Event()

        def setup(name: str) -> Any:
            def on_open(handshake: Any, channel: Channel) -> None:
                opened.append(channel.protocol)
                if len(opened) == 4:  # two channels on each side
                    all_open.set()

            def create(mux: Mux, peer: Any) -> None:
                channel = mux.create_channel(name, on_open=on_open)
                assert channel
                channel.open()

            return create

        for swarm in (s1, s2):
            hub = SwarmMux.of(swarm)
            assert SwarmMux.of(swarm) is hub
            hub.on_mux(setup("one"))
            hub.on_mux(setup("two"))
        t = topic("swarm-mux")
        await s1.join(t, client=False).flushed()
        s2.join(t, server=False)
        with anyio.fail_after(TIMEOUT):
            await s2.flush()
            await all_open.wait()
        hub1 = SwarmMux.of(s1)
        assert len(hub1) == 1
        (mux,) = hub1
        assert hub1.get(s2.key_pair.public_key) is mux
        assert sorted(c.protocol for c in mux.channels) == ["one", "two"]
        assert sorted(opened) == ["one", "one", "two", "two"]
