"""Shared helpers for the DHT tests: raw UDP clients that speak (or break) the wire."""

from __future__ import annotations

import os
from dataclasses import replace

import anyio
import anyio.abc

from p2pswarm.dht import messages
from p2pswarm.dht.amplification import pad_target
from p2pswarm.dht.messages import Command, Request, Response

#: Short timeouts for tests that wait out dead nodes, with retransmits to spare, so a
#: stalled event loop on a busy machine does not turn a live node into a "dead" one.
QUICK: dict[str, float] = {"request_timeout": 0.2, "first_retransmit": 0.05, "retries": 2}


class RawPeer:
    """A bare UDP socket on 127.0.0.1 that sends hand-made datagrams and reads replies."""

    def __init__(self, sock: anyio.abc.UDPSocket) -> None:
        self.sock = sock

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.extra(anyio.abc.SocketAttribute.local_address)[:2]
        return str(host), int(port)

    async def send(self, data: bytes, to: tuple[str, int]) -> None:
        await self.sock.sendto(data, *to)

    async def request(self, to: tuple[str, int], request: Request, *, pay: bool = True) -> Response:
        """Send ``request`` and return the reply carrying its rid (bounded by 5 s).

        With ``pay`` (as a real node does) a request without a token is padded to pay for
        a full reply (see p2pswarm.dht.amplification).
        """
        data = request.encode()
        target = pad_target(request.command)
        if pay and not request.token and not request.padding and len(data) + 2 < target:
            data = replace(request, padding=target - len(data) - 2).encode()
        await self.send(data, to)
        with anyio.fail_after(5):
            while True:
                data, _ = await self.sock.receive()
                reply = messages.decode(data)
                if isinstance(reply, Response) and reply.rid == request.rid:
                    return reply

    async def token_from(self, to: tuple[str, int], topic: bytes) -> bytes:
        reply = await self.request(to, Request(Command.LOOKUP, new_rid(), key=topic))
        assert reply.token is not None
        return reply.token


def new_rid() -> int:
    return int.from_bytes(os.urandom(4), "big")


async def open_raw_peer() -> RawPeer:
    return RawPeer(await anyio.create_udp_socket(local_host="127.0.0.1"))
