"""The transaction layer alone (no socket): the congestion window holds sends back until a
drain, replies are matched by tid and source, closing fails what waits."""

from __future__ import annotations

import anyio
import pytest

from p2pswarm.errors import DHTRequestError, DHTTimeoutError
from p2pswarm.hyperdht.rpc import Reply, Transactions
from p2pswarm.protocol.compact import IPv4Address
from p2pswarm.protocol.dht_rpc import Response, decode_request

pytestmark = pytest.mark.anyio

PEER = ("127.0.0.1", 7000)


def make(sent: list[tuple[bytes, tuple[str, int]]], window: int = 80) -> Transactions:
    return Transactions(
        lambda data, to: sent.append((data, to)),
        wire_id=lambda: None,
        closest=lambda target: [],
        max_window=window,
    )


async def test_the_window_holds_sends_until_a_drain() -> None:
    sent: list[tuple[bytes, tuple[str, int]]] = []
    rpc = make(sent, window=1)
    replies: list[Reply] = []

    async def ask() -> None:
        replies.append(await rpc.request(PEER, 0, internal=True))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(ask)
        await anyio.wait_all_tasks_blocked()
        assert len(sent) == 1  # one per slot
        rpc.drain()
        await anyio.wait_all_tasks_blocked()
        assert len(sent) == 2  # and twice the window over the ring
        rpc.drain()
        await anyio.wait_all_tasks_blocked()
        assert len(sent) == 2
        for data, _ in sent:
            tid = decode_request(data).tid
            assert rpc.on_response(Response(tid, IPv4Address(*PEER)), PEER) is not None
        # As in io.js, a send answered in a later slot keeps its slot until the ring
        # comes round and clears it (here: the second drain).
        rpc.drain()
        await anyio.wait_all_tasks_blocked()
        assert len(sent) == 2
        rpc.drain()
        await anyio.wait_all_tasks_blocked()
        assert len(sent) == 3
        tid = decode_request(sent[2][0]).tid
        rpc.on_response(Response(tid, IPv4Address(*PEER)), PEER)
    assert len(replies) == 3


async def test_replies_are_matched_by_tid_and_source() -> None:
    sent: list[tuple[bytes, tuple[str, int]]] = []
    rpc = make(sent)
    async with anyio.create_task_group() as tg:
        results: list[Reply] = []

        async def ask(any_responder: bool) -> None:
            results.append(await rpc.request(PEER, 0, any_responder=any_responder))

        # one at a time: trio does not run tasks in the order they were started
        tg.start_soon(ask, False)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(ask, True)
        await anyio.wait_all_tasks_blocked()
        strict, relaxed = (decode_request(d).tid for d, _ in sent)
        other = ("127.0.0.1", 7001)
        assert rpc.on_response(Response(strict, IPv4Address(*other)), other) is None
        assert rpc.on_response(Response(relaxed, IPv4Address(*other)), other) is not None
        assert rpc.on_response(Response(relaxed, IPv4Address(*other)), other) is None  # once
        assert rpc.on_response(Response(strict, IPv4Address(*PEER)), PEER) is not None
    assert sorted(r.from_.port for r in results) == [7000, 7001]


async def test_resends_then_a_timeout() -> None:
    sent: list[tuple[bytes, tuple[str, int]]] = []
    rpc = make(sent)
    with pytest.raises(DHTTimeoutError):
        await rpc.request(PEER, 0, retries=2, resend_after=0.01)
    assert len(sent) == 3 and len({d for d, _ in sent}) == 1  # the same datagram
    assert not rpc.inflight


async def test_closing_fails_waiting_requests() -> None:
    sent: list[tuple[bytes, tuple[str, int]]] = []
    rpc = make(sent)
    failures: list[BaseException] = []

    async def ask() -> None:
        try:
            await rpc.request(PEER, 0)
        except DHTRequestError as exc:
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask)
        await anyio.wait_all_tasks_blocked()
        rpc.close()
    assert len(failures) == 1
    with pytest.raises(DHTRequestError):
        await rpc.request(PEER, 0)
