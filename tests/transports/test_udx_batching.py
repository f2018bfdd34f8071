"""UDP GSO sends and GRO receives: the pure grouping (Hypothesis) and the real kernel on
127.0.0.1 keeping every datagram's boundaries, on asyncio and trio."""

from __future__ import annotations

import os
import socket
import sys

import anyio
import pytest
from hypothesis import given, strategies as st

from p2pswarm.transports.udx import open_udx_socket
from p2pswarm.transports.udx.batching import MAX_SEGMENTS, gso_runs, send_run, split_gro

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="UDP GSO is Linux's")


@given(st.lists(st.integers(min_value=1, max_value=1500), max_size=300))
def test_runs_keep_order_and_follow_the_kernels_rules(sizes: list[int]) -> None:
    datagrams = [bytes([i % 256]) * size for i, size in enumerate(sizes)]
    runs = list(gso_runs(datagrams))
    assert [d for run in runs for d in run] == datagrams
    for run in runs:
        assert 1 <= len(run) <= MAX_SEGMENTS
        assert sum(map(len, run)) <= 65_507 or len(run) == 1
        assert all(len(d) == len(run[0]) for d in run[:-1])
        assert len(run[-1]) <= len(run[0])


def test_equal_datagrams_go_in_as_few_runs_as_the_limits_allow() -> None:
    runs = list(gso_runs([b"x" * 1472] * 100 + [b"y" * 20]))
    assert [len(run) for run in runs] == [44, 44, 13]  # 44 x 1472 fits in 65,507 bytes


@given(st.binary(min_size=1, max_size=5000), st.integers(min_value=1, max_value=6000))
def test_split_gro_is_the_inverse_of_joining(data: bytes, size: int) -> None:
    parts = split_gro(data, size)
    assert b"".join(parts) == data
    assert all(len(p) == size for p in parts[:-1])


@linux_only
def test_the_kernel_delivers_a_gso_run_as_separate_datagrams() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
    ):
        rx.bind(("127.0.0.1", 0))
        run = [os.urandom(1200) for _ in range(9)] + [os.urandom(300)]
        send_run(tx, run, rx.getsockname())
        rx.settimeout(5)
        assert [rx.recv(2048) for _ in run] == run


@linux_only
@pytest.mark.anyio
async def test_a_gro_socket_hands_each_datagram_over_with_its_boundaries() -> None:
    got: list[bytes] = []
    done = anyio.Event()
    run = [os.urandom(1000) for _ in range(20)] + [os.urandom(10)]

    def on_message(data: bytes, address: tuple[str, int]) -> None:
        got.append(data)
        if len(got) == len(run):
            done.set()

    async with open_udx_socket(on_message=on_message) as udx:
        assert udx.gro and udx.gso
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            send_run(tx, run, udx.local_address)
            with anyio.fail_after(10):
                await done.wait()
    assert got == run


@pytest.mark.anyio
async def test_bulk_over_gso_and_gro_arrives_intact() -> None:
    data = os.urandom(8 << 20)
    async with open_udx_socket() as sa, open_udx_socket() as sb:
        a, b = sa.create_stream(), sb.create_stream()
        a.connect(b.id, *sb.local_address)
        b.connect(a.id, *sa.local_address)
        received = bytearray()

        async def send() -> None:
            await a.send(data)
            await a.send_eof()

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(send)
                while len(received) < len(data):
                    received += await b.receive()
    assert bytes(received) == data
