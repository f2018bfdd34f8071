"""UDX between two of our sockets on 127.0.0.1, on asyncio and trio."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from p2pswarm.errors import UDXResetError
from p2pswarm.transports.udx import Faults, UDXSocket, UDXStream, open_udx_socket

pytestmark = pytest.mark.anyio

LIMIT = 30


@asynccontextmanager
async def stream_pair(
    faults_a: Faults | None = None, faults_b: Faults | None = None
) -> AsyncIterator[tuple[UDXStream, UDXStream, UDXSocket, UDXSocket]]:
    async with (
        open_udx_socket(faults=faults_a) as sa,
        open_udx_socket(faults=faults_b) as sb,
    ):
        a = sa.create_stream()
        b = sb.create_stream()
        a.connect(b.id, *sb.local_address)
        b.connect(a.id, *sa.local_address)
        yield a, b, sa, sb


async def read_all(stream: UDXStream) -> bytes:
    chunks = []
    while True:
        try:
            chunks.append(await stream.receive())
        except anyio.EndOfStream:
            return b"".join(chunks)


async def exchange(a: UDXStream, b: UDXStream, ab: bytes, ba: bytes) -> tuple[bytes, bytes]:
    results: dict[str, bytes] = {}

    async def side(name: str, stream: UDXStream, data: bytes) -> None:
        async def write() -> None:
            for i in range(0, len(data), 65536):
                await stream.send(data[i : i + 65536])
            await stream.send_eof()

        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            results[name] = await read_all(stream)

    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(side, "a", a, ab)
            tg.start_soon(side, "b", b, ba)
    return results["a"], results["b"]


@pytest.mark.parametrize("size", [1, 1152, 100_000, 3 << 20])
async def test_bytes_arrive_in_order_both_ways(size: int) -> None:
    ab, ba = os.urandom(size), os.urandom(size // 2 + 1)
    async with stream_pair() as (a, b, _sa, _sb):
        got_a, got_b = await exchange(a, b, ab, ba)
        assert got_b == ab and got_a == ba
        with anyio.fail_after(LIMIT):
            await a.wait_closed()
            await b.wait_closed()
        assert a.machine.error is None and b.machine.error is None


async def test_end_in_both_orders() -> None:
    async with stream_pair() as (a, b, _sa, _sb):
        with anyio.fail_after(LIMIT):
            await a.send(b"a first")
            await a.send_eof()
            assert await read_all(b) == b"a first"
            await b.send(b"b after a's end")
            await b.send_eof()
            assert await read_all(a) == b"b after a's end"
            await a.wait_closed()


async def test_destroy_resets_the_peer() -> None:
    async with stream_pair() as (a, b, _sa, _sb):
        with anyio.fail_after(LIMIT):
            await a.send(b"x")
            assert await b.receive() == b"x"
            a.destroy()
            with pytest.raises(anyio.BrokenResourceError) as info:
                await b.receive()
            assert isinstance(info.value.__cause__, UDXResetError)
            with pytest.raises(anyio.ClosedResourceError):
                await a.send(b"y")


async def test_aclose_still_delivers_what_was_written() -> None:
    data = os.urandom(1 << 20)
    async with stream_pair() as (a, b, _sa, sb):
        with anyio.fail_after(LIMIT):
            await a.send(data)
            await a.aclose()
            assert await read_all(b) == data
            await b.aclose()
            await a.wait_closed()
            await b.wait_closed()
            assert sb.streams == ()


async def test_many_streams_on_one_socket() -> None:
    async with open_udx_socket() as sa, open_udx_socket() as sb:
        pairs = []
        for _ in range(40):
            a, b = sa.create_stream(), sb.create_stream()
            a.connect(b.id, *sb.local_address)
            b.connect(a.id, *sa.local_address)
            pairs.append((a, b, os.urandom(20_000)))

        async def one(a: UDXStream, b: UDXStream, data: bytes) -> None:
            got_b, got_a = await exchange(a, b, data, data[::-1])
            assert got_a == data and got_b == data[::-1]

        with anyio.fail_after(LIMIT):
            async with anyio.create_task_group() as tg:
                for pair in pairs:
                    tg.start_soon(one, *pair)


async def test_messages_and_foreign_datagrams() -> None:
    foreign: list[tuple[bytes, tuple[str, int]]] = []
    two = anyio.Event()

    def on_message(data: bytes, address: tuple[str, int]) -> None:
        foreign.append((data, address))
        if len(foreign) == 2:
            two.set()

    async with (
        open_udx_socket(on_message=on_message) as sa,
        open_udx_socket() as sb,
    ):
        a, b = sa.create_stream(), sb.create_stream()
        a.connect(b.id, *sb.local_address)
        b.connect(a.id, *sa.local_address)
        with anyio.fail_after(LIMIT):
            b.send_message(b"unordered")
            assert await a.receive_message() == b"unordered"
            sb.send_datagram(b"\x13dht-rpc", sa.local_address)
            sb.send_datagram(b"\x00", sa.local_address)  # a hole-punch probe
            await two.wait()
        assert [d for d, _ in foreign] == [b"\x13dht-rpc", b"\x00"]
        assert foreign[0][1] == sb.local_address


@pytest.mark.parametrize("seed", [1, 2])
async def test_seeded_loss_and_reordering_on_both_sockets(seed: int) -> None:
    fa = Faults(seed=seed, drop=0.03, reorder=0.03)
    fb = Faults(seed=seed + 100, drop=0.03, reorder=0.03)
    ab, ba = os.urandom(600_000), os.urandom(300_000)
    async with stream_pair(fa, fb) as (a, b, _sa, _sb):
        got_a, got_b = await exchange(a, b, ab, ba)
        assert got_b == ab and got_a == ba
    assert fa.dropped and fb.dropped and fa.reordered


async def test_garbage_and_unknown_ids_leave_streams_unharmed() -> None:
    async with stream_pair() as (a, b, _sa, sb):
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            bad = [
                b"\xff\x01",  # truncated
                b"\xff\x01\x40\x00" + b.id.to_bytes(4, "little") + bytes(12),  # unknown type
                b"\xff\x01\x04\x00" + b.id.to_bytes(4, "little") + bytes(12) + b"ragged",
                b"\xff\x01\x01\x00" + (b.id ^ 1).to_bytes(4, "little") + bytes(12),  # no stream
            ]
            # a flood of packets for streams that do not exist
            bad += [b"\xff\x01\x01\x00" + i.to_bytes(4, "little") + bytes(12) for i in range(2000)]
            for datagram in bad:
                raw.sendto(datagram, sb.local_address)
        finally:
            raw.close()
        got_a, got_b = await exchange(a, b, b"still fine", b"yes")
        assert got_b == b"still fine" and got_a == b"yes"
        assert sb.dropped >= 2


async def test_change_remote_moves_a_live_stream_to_another_socket() -> None:
    ab, ba = os.urandom(1 << 20), os.urandom(1 << 20)
    async with open_udx_socket() as sa, open_udx_socket() as sb, open_udx_socket() as sc:
        a, b = sa.create_stream(), sb.create_stream()
        a.connect(b.id, *sb.local_address)
        b.connect(a.id, *sa.local_address)
        halfway, moved = anyio.Event(), anyio.Event()
        results: dict[str, bytes] = {}

        async def reader(name: str, stream: UDXStream) -> None:
            got = bytearray()
            while True:
                try:
                    got += await stream.receive()
                except anyio.EndOfStream:
                    break
                if name == "a" and len(got) >= len(ba) // 2:
                    halfway.set()
            results[name] = bytes(got)

        async def writer(stream: UDXStream, data: bytes) -> None:
            for i in range(0, len(data), 65536):
                if i == len(data) // 2:
                    await moved.wait()  # the second half only once the path has moved
                await stream.send(data[i : i + 65536])
            await stream.send_eof()

        with anyio.fail_after(LIMIT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(reader, "a", a)
                tg.start_soon(reader, "b", b)
                tg.start_soon(writer, a, ab)
                tg.start_soon(writer, b, ba)
                await halfway.wait()
                # b moves to a new socket (a punched path, say); both sides learn it
                b.change_remote(a.id, *sa.local_address, socket=sc)
                a.change_remote(b.id, *sc.local_address)
                moved.set()
        assert results["b"] == ab and results["a"] == ba
        assert sb.streams == () and b.socket is sc


async def test_the_fault_hook_delays_and_drops_and_every_byte_still_arrives() -> None:
    # 20 ms each way from the hook (plus up to 10 ms of jitter, which reorders), 3% loss.
    hooks = [Faults(seed=s, drop=0.03, delay=0.02, jitter=0.01) for s in (5, 6)]
    data, back = os.urandom(600_000), os.urandom(200_000)
    async with stream_pair(*hooks) as (a, b, _sa, _sb):
        got_a, got_b = await exchange(a, b, data, back)
        assert got_b == data and got_a == back
        # Nothing can come back sooner than both delays (a bound, not a timing).
        assert a.machine.rtt.min_rtt >= 0.04 and b.machine.rtt.min_rtt >= 0.04
    assert all(hook.dropped > 0 for hook in hooks)


def test_fault_delays_are_seeded() -> None:
    one, two = Faults(seed=9, delay=0.01, jitter=0.05), Faults(seed=9, delay=0.01, jitter=0.05)
    first = [one.latency() for _ in range(50)]
    assert first == [two.latency() for _ in range(50)]
    assert all(0.01 <= x <= 0.06 for x in first) and len(set(first)) > 1
    assert Faults(delay=0.03).latency() == 0.03 and not Faults().delays
    with pytest.raises(ValueError, match="seconds"):
        Faults(delay=-1)
