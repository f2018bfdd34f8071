"""``relayThrough``: connecting through a blind relay when no direct path exists.

As hyperdht 6.34 (``connect.js relayConnection``, ``server.js _relayConnection``): a client
or a server may name a relay peer (a public key, or a function returning one per
connection). The side that chose draws a random 32-byte token and sends
``relayThrough: {publicKey, token}`` in its Noise handshake payload. When the connection
cannot go direct (the handshake was relayed and both sides are firewalled, where hole
punching would run), both sides connect to the relay peer over the DHT, open a
``blind-relay`` channel, ``pair`` their connection's UDX stream under the token (the side
that chose is the initiator; when both chose, the server's choice wins, as in JS) and
connect it to the relay stream they are given, at the relay's address. The secret stream
then starts from the handshake's keys, end to end: the relay forwards ciphertext.

The control connection to the relay lives as long as the relayed stream (JS:
``rawStream.on('close', destroyRelayConnection)``). :func:`relay_handler` makes a
HyperDHT server a relay for others.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

import anyio

from ..connection import Connection
from ..errors import P2PSwarmError, RelayPairingError
from ..mux import Mux
from ..protocol.hyperdht_connect import RelayThrough
from ..relay import BlindRelayClient, BlindRelayServer
from ..transports.udx import UDXSocket, UDXStream
from .host import ConnectHost
from .rpc import Address

__all__ = (
    "RELAY_TIMEOUT",
    "RelayPlan",
    "RelayThroughOption",
    "offer",
    "pair_through",
    "plan",
    "relay_handler",
    "select_relay",
)

#: Seconds to wait for the relay to pair us (JS: 15 s).
RELAY_TIMEOUT: Final = 15.0

RelayThroughOption: TypeAlias = (
    bytes | Sequence[bytes] | Callable[[], "bytes | Sequence[bytes] | None"] | None
)
#: How a control connection's Mux may end without it being our failure.
_ENDED: Final = (P2PSwarmError, anyio.BrokenResourceError, OSError)
Connect: TypeAlias = Callable[[bytes], Awaitable[Connection]]


def select_relay(option: RelayThroughOption) -> bytes | None:
    """The relay key for one connection (``selectRelay``: call a function, pick one of a
    list at random)."""
    if callable(option):
        option = option()
    if option is None:
        return None
    if isinstance(option, bytes):
        return option
    choices = list(option)
    return secrets.choice(choices) if choices else None


def offer(option: RelayThroughOption) -> RelayThrough | None:
    """Our payload's ``relayThrough`` for one connection, with a fresh token."""
    key = select_relay(option)
    return RelayThrough(key, secrets.token_bytes(32)) if key is not None else None


@dataclass(frozen=True, slots=True)
class RelayPlan:
    public_key: bytes
    token: bytes
    is_initiator: bool


def plan(
    ours: RelayThrough | None, theirs: RelayThrough | None, *, server: bool
) -> RelayPlan | None:
    """Who pairs as what: the side that chose is the initiator; the server's choice wins."""
    if server:
        if ours is not None:
            return RelayPlan(ours.public_key, ours.token, True)
        if theirs is not None:
            return RelayPlan(theirs.public_key, theirs.token, False)
        return None
    if theirs is not None:
        return RelayPlan(theirs.public_key, theirs.token, False)
    if ours is not None:
        return RelayPlan(ours.public_key, ours.token, True)
    return None


async def pair_through(
    dht: ConnectHost, connect: Connect, relay: RelayPlan, stream: UDXStream
) -> Address:
    """Pair ``stream`` through the relay and connect it there; returns the relay's address.

    :raises ~p2pswarm.errors.RelayPairingError: the relay is unreachable or did not pair
    """
    try:
        control = await connect(relay.public_key)
    except P2PSwarmError as exc:
        raise RelayPairingError(f"cannot reach the relay: {exc}") from exc
    mux = Mux.of(control)
    client = BlindRelayClient(mux)
    started = anyio.Event()

    async def keep() -> None:
        """The control connection, for as long as the relayed stream lives."""
        try:
            async with anyio.create_task_group() as tg:

                async def run_mux() -> None:
                    started.set()
                    with contextlib.suppress(*_ENDED):
                        await mux.run()
                    tg.cancel_scope.cancel()

                tg.start_soon(run_mux)
                await stream.wait_closed()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await control.aclose()

    try:
        dht.start_task(keep)
    except P2PSwarmError:
        await control.aclose()
        raise
    await started.wait()
    try:
        remote_id = await client.pair(relay.is_initiator, relay.token, stream, within=RELAY_TIMEOUT)
    except RelayPairingError:
        stream.destroy()
        raise
    address = control.remote_address
    stream.connect(remote_id, *address)
    return address


def relay_handler(relay: BlindRelayServer) -> Callable[[Connection], Awaitable[None]]:
    """A HyperDHT server handler that relays for its clients: the relay's streams go on the
    UDX socket each control connection runs on (where its client sends)."""

    async def handle(connection: Connection) -> None:
        transport = getattr(connection, "_stream", None)
        socket = transport.socket if isinstance(transport, UDXStream) else None
        mux = Mux.of(connection)
        relay.accept(mux, socket=socket if isinstance(socket, UDXSocket) else None)
        with contextlib.suppress(*_ENDED):
            await mux.run()

    return handle
