"""UDX relay_to (libudx's forwarding, what a blind relay runs on): two end streams on their
own sockets talk through a pair of relay streams on a third socket, which forwards packets
verbatim with the receiver id rewritten; a DESTROY passes through and closes both relay
streams; destroying one relay stream closes the other without a DESTROY of its own."""

from __future__ import annotations

import os

import anyio
import pytest

from p2pswarm.transports.udx import Address, UDXStream, open_udx_socket

pytestmark = pytest.mark.anyio

LIMIT = 20


def adopt(remote_id: int) -> object:
    """A relay stream's firewall: connect to whoever sends first (blind-relay's)."""

    def firewall(stream: UDXStream, address: Address) -> bool:
        stream.connect(remote_id, *address)
        return False

    return firewall


async def read_all(stream: UDXStream) -> bytes:
    chunks = []
    while True:
        try:
            chunks.append(await stream.receive())
        except anyio.EndOfStream:
            return b"".join(chunks)


async def relayed_pair(relay, a_socket, b_socket):  # type: ignore[no-untyped-def]
    a = a_socket.create_stream()
    b = b_socket.create_stream()
    ra = relay.create_stream(firewall=adopt(a.id))
    rb = relay.create_stream(firewall=adopt(b.id))
    ra.relay_to(rb)
    rb.relay_to(ra)
    host, port = relay.local_address
    a.connect(ra.id, host, port)
    b.connect(rb.id, host, port)
    # Each end makes its relay stream learn its address with a UDX message; one sent before
    # the other side's relay stream is connected is dropped there, so repeat (bounded).
    for _ in range(50):
        a.send_message(b"")
        b.send_message(b"")
        with anyio.move_on_after(0.2):
            await a.receive_message()
            await b.receive_message()
            break
    else:
        raise AssertionError("the relay never forwarded a message")
    return a, b, ra, rb


async def test_bytes_flow_both_ways_through_the_relay() -> None:
    data_a, data_b = os.urandom(300_000), os.urandom(200_000)
    async with open_udx_socket() as relay, open_udx_socket() as sa, open_udx_socket() as sb:
        with anyio.fail_after(LIMIT):
            a, b, ra, rb = await relayed_pair(relay, sa, sb)
            got: dict[str, bytes] = {}

            async def side(name: str, stream: UDXStream, data: bytes) -> None:
                async with anyio.create_task_group() as tg:

                    async def send() -> None:
                        await stream.send(data)
                        await stream.send_eof()

                    tg.start_soon(send)
                    got[name] = await read_all(stream)

            async with anyio.create_task_group() as tg:
                tg.start_soon(side, "a", a, data_a)
                tg.start_soon(side, "b", b, data_b)
        assert got == {"a": data_b, "b": data_a}
        assert ra.relayed_packets > 0 and rb.relayed_packets > 0
        # The relay streams never decoded anything: no acks of their own.
        assert ra.machine.stats.packets_received == 0


async def test_a_destroy_passes_through_and_closes_both_relay_streams() -> None:
    async with open_udx_socket() as relay, open_udx_socket() as sa, open_udx_socket() as sb:
        with anyio.fail_after(LIMIT):
            a, b, ra, rb = await relayed_pair(relay, sa, sb)
            a.destroy()
            with pytest.raises(anyio.BrokenResourceError):
                await b.receive()
            await ra.wait_closed()
            await rb.wait_closed()
        assert relay.streams == ()


async def test_destroying_a_relay_stream_closes_its_partner_silently() -> None:
    async with open_udx_socket() as relay, open_udx_socket() as sa, open_udx_socket() as sb:
        with anyio.fail_after(LIMIT):
            a, b, ra, rb = await relayed_pair(relay, sa, sb)
            ra.destroy()
            assert ra.closed and rb.closed
            assert relay.streams == ()
            # No DESTROY went to the ends: they are still open (their timeouts end them).
            assert not a.closed and not b.closed
