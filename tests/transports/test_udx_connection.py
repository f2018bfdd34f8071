"""p2pswarm's encrypted Connection over our UDX, dialled with UDXDialer, on asyncio and trio."""

from __future__ import annotations

import os

import anyio
import pytest

from p2pswarm import KeyPair
from p2pswarm.errors import DialError
from p2pswarm.peer_record import PeerAddress, PeerRecord
from p2pswarm.transports.udx import UDXDialer, UDXStream, accept_udx, open_udx_socket

pytestmark = pytest.mark.anyio


async def test_dialer_connects_and_data_flows_both_ways() -> None:
    server_keys, client_keys = KeyPair.generate(), KeyPair.generate()
    data = os.urandom(500_000)
    async with open_udx_socket() as server_socket, open_udx_socket() as client_socket:
        # In HyperDHT the two stream ids travel in the handshake payloads; here the dialer's
        # on_stream hook hands ours to the server directly.
        listening = server_socket.create_stream()
        dialled: list[UDXStream] = []
        ready = anyio.Event()

        def on_stream(stream: UDXStream) -> None:
            dialled.append(stream)
            listening.connect(stream.id, *client_socket.local_address)
            ready.set()

        host, port = server_socket.local_address
        record = PeerRecord(server_keys.public_key, (PeerAddress(host, port),))
        dialer = UDXDialer(client_socket, lambda rec, addr: listening.id, on_stream=on_stream)
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:

                async def serve() -> None:
                    await ready.wait()
                    conn = await accept_udx(listening, key_pair=server_keys)
                    async with conn:
                        received = bytearray()
                        while len(received) < len(data):
                            received += await conn.receive()
                        await conn.send(bytes(received[::-1]))
                        await conn.send_eof()
                        with pytest.raises(anyio.EndOfStream):
                            await conn.receive()

                tg.start_soon(serve)
                conn = await dialer.dial(record, key_pair=client_keys)
                async with conn:
                    assert conn.remote_public_key == server_keys.public_key
                    await conn.send(data)
                    reply = bytearray()
                    while len(reply) < len(data):
                        reply += await conn.receive()
                    assert bytes(reply) == data[::-1]
                    await conn.send_eof()
        assert len(dialled) == 1


async def test_dialer_without_stream_ids_says_why() -> None:
    async with open_udx_socket() as socket:
        record = PeerRecord(KeyPair.generate().public_key, (PeerAddress("127.0.0.1", 9),))
        with pytest.raises(DialError) as info:
            await UDXDialer(socket, lambda rec, addr: None).dial(
                record, key_pair=KeyPair.generate()
            )
        assert "no UDX stream id" in info.value.reasons[0]
