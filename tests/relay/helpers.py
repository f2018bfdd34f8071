"""A Python blind relay with clients on real sockets: control connections are secret streams
over TCP on 127.0.0.1, relayed data runs on real UDX sockets."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio

from p2pswarm.errors import P2PSwarmError
from p2pswarm.mux import Mux
from p2pswarm.relay import BlindRelayClient, BlindRelayServer
from p2pswarm.transports.udx import UDXSocket, UDXStream, open_udx_socket

from ..test_connection import connected_pair

__all__ = ("Relay", "announce", "read_all", "relay_with_clients")


class Relay:
    def __init__(
        self, server: BlindRelayServer, clients: list[BlindRelayClient], sockets: list[UDXSocket]
    ) -> None:
        self.server = server
        self.clients = clients
        self.sockets = sockets
        self.server_muxes: list[Mux] = []

    @property
    def address(self) -> tuple[str, int]:
        assert self.server.socket is not None
        host, port = self.server.socket.local_address
        return host, port


@asynccontextmanager
async def relay_with_clients(count: int = 2, **server_options: Any) -> AsyncIterator[Relay]:
    """A relay and ``count`` clients, each on its own connection and UDX socket."""
    async with AsyncExitStack() as stack:
        relay_socket = await stack.enter_async_context(open_udx_socket())
        server = BlindRelayServer(relay_socket, **server_options)
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tg.cancel_scope.cancel)
        clients, sockets, server_muxes = [], [], []
        for _ in range(count):
            client_conn, relay_conn = await stack.enter_async_context(connected_pair())
            relay_mux, client_mux = Mux(relay_conn), Mux(client_conn)
            server.accept(relay_mux)
            clients.append(BlindRelayClient(client_mux))
            server_muxes.append(relay_mux)
            tg.start_soon(run_quietly, relay_mux)
            tg.start_soon(run_quietly, client_mux)
            sockets.append(await stack.enter_async_context(open_udx_socket()))
        relay = Relay(server, clients, sockets)
        relay.server_muxes = server_muxes
        stack.callback(server.close)
        yield relay


async def run_quietly(mux: Mux) -> None:
    """Run a Mux; a connection it drops for bad input ends here (``mux.error`` keeps why)."""
    with contextlib.suppress(P2PSwarmError, anyio.BrokenResourceError, OSError):
        await mux.run()


async def announce(stream: UDXStream, peer: UDXStream) -> None:
    """Make both relay streams learn their client's address (a UDX message each, repeated:
    one sent before the far relay stream has its address is dropped there)."""
    for _ in range(50):
        stream.send_message(b"")
        peer.send_message(b"")
        with anyio.move_on_after(0.2):
            await stream.receive_message()
            await peer.receive_message()
            return
    raise AssertionError("the relay never forwarded a message")


async def read_all(stream: Any) -> bytes:
    chunks = []
    while True:
        try:
            chunks.append(await stream.receive())
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return b"".join(chunks)
