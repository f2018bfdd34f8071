"""The handshake pump: the secret-stream handshake over any connected byte stream.

:func:`initiate_handshake` / :func:`accept_handshake` drive a
:class:`~p2pswarm.protocol.SecretStream` handshake over an already connected
``anyio.abc.ByteStream`` (a TCP socket today, a UDX stream next) and return a
:class:`~p2pswarm.connection.Connection`. The responder side takes an ``authorize`` hook
(the swarm's firewall and ban list), called as soon as the peer's key is known and before
this side's final handshake message. Every transport shares this one pump, so none of them
knows the handshake.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeAlias

import anyio
from anyio.abc import ByteStream, SocketAttribute

from ..connection import DEFAULT_IDLE_TIMEOUT, DEFAULT_KEEPALIVE, Connection
from ..errors import (
    HandshakeError,
    HandshakeRefusedError,
    HandshakeTimeoutError,
    PeerBannedError,
)
from ..keys import KeyPair, check_public_key
from ..protocol import (
    MAX_FRAME_SIZE,
    Event,
    HandshakeComplete,
    PeerIdentified,
    ProtocolViolation,
    SecretStream,
)

__all__ = (
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "MAX_PENDING_HANDSHAKES",
    "Authorize",
    "accept_handshake",
    "check_times",
    "initiate_handshake",
    "start_connection",
    "stream_address",
)

#: Seconds the whole handshake (every message and the first reply) may take.
DEFAULT_HANDSHAKE_TIMEOUT: Final = 10.0
#: Seconds a TCP connect may take before the dialler moves on to the next address.
_HANDSHAKE_READ_SIZE: Final = 65536


#: ``authorize(remote_public_key, remote_address, remote_topics)``: True admits the peer.
Authorize: TypeAlias = Callable[[bytes, tuple[str, int], tuple[bytes, ...]], bool | Awaitable[bool]]


def check_times(**times: float | None) -> None:
    for name, value in times.items():
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")


def stream_address(stream: ByteStream) -> tuple[str, int]:
    address = stream.extra(SocketAttribute.remote_address, None)
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return ("", 0)


async def _run_handshake(
    stream: ByteStream,
    machine: SecretStream,
    *,
    remote_address: tuple[str, int],
    authorize: Authorize | None,
    handshake_timeout: float | None,
) -> list[Event]:
    """Pump the handshake; return the events that followed HandshakeComplete."""
    try:
        with anyio.fail_after(handshake_timeout):
            outgoing = machine.data_to_send()
            if outgoing:
                await stream.send(outgoing)
            replied = False
            while True:
                try:
                    chunk = await stream.receive(_HANDSHAKE_READ_SIZE)
                except anyio.EndOfStream:
                    if machine.is_initiator and not replied:
                        raise HandshakeRefusedError(
                            "the peer closed the connection after our first handshake "
                            "message, without replying"
                        ) from None
                    chunk = b""
                replied = True
                events: deque[Event] = deque(machine.receive_data(chunk))
                while events:
                    event = events.popleft()
                    if isinstance(event, ProtocolViolation):
                        raise event.error
                    if isinstance(event, PeerIdentified):
                        assert authorize is not None
                        verdict = authorize(
                            event.remote_public_key, remote_address, event.remote_topics
                        )
                        if inspect.isawaitable(verdict):
                            verdict = await verdict
                        if not verdict:
                            raise PeerBannedError(
                                f"peer {event.remote_public_key.hex()[:16]}… at "
                                f"{remote_address[0]}:{remote_address[1]} was refused"
                            )
                        events.extend(machine.accept_peer())
                    elif isinstance(event, HandshakeComplete):
                        outgoing = machine.data_to_send()
                        if outgoing:
                            await stream.send(outgoing)
                        return list(events)
                outgoing = machine.data_to_send()
                if outgoing:
                    await stream.send(outgoing)
    except TimeoutError:
        raise HandshakeTimeoutError(
            f"handshake with {remote_address[0]}:{remote_address[1]} took over "
            f"{handshake_timeout} s"
        ) from None
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
        raise HandshakeError(f"connection lost during the handshake: {exc!r}") from exc


async def _handshake(
    stream: ByteStream,
    machine: SecretStream,
    *,
    remote_address: tuple[str, int] | None,
    authorize: Authorize | None,
    handshake_timeout: float | None,
    keepalive: float | None,
    idle_timeout: float | None,
) -> Connection:
    address = remote_address if remote_address is not None else stream_address(stream)
    try:
        rest = await _run_handshake(
            stream,
            machine,
            remote_address=address,
            authorize=authorize,
            handshake_timeout=handshake_timeout,
        )
        connection = Connection(
            stream,
            machine,
            remote_address=address,
            initial_events=rest,
            keepalive=keepalive,
            idle_timeout=idle_timeout,
        )
    except BaseException:
        machine.close()
        with anyio.CancelScope(shield=True):
            await anyio.aclose_forcefully(stream)
        raise
    await connection._close_if_failed()
    return connection


async def initiate_handshake(
    stream: ByteStream,
    *,
    key_pair: KeyPair,
    remote_public_key: bytes | None = None,
    topics: Sequence[bytes] = (),
    remote_address: tuple[str, int] | None = None,
    authorize: Authorize | None = None,
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
    keepalive: float | None = DEFAULT_KEEPALIVE,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    max_frame_size: int = MAX_FRAME_SIZE,
) -> Connection:
    """Run the initiator's handshake over a connected stream: IK when ``remote_public_key``
    is given (the responder must hold that key), XX otherwise.

    ``topics`` (at most 64) travel in our hello. ``authorize`` (XX only; with IK the key
    is known before dialling) vets the responder before our final message. On any failure
    the stream is closed and a :class:`~p2pswarm.errors.HandshakeError` (or
    :class:`~p2pswarm.errors.HandshakeTimeoutError`, :class:`~p2pswarm.errors.PeerBannedError`)
    is raised.
    """
    check_times(handshake_timeout=handshake_timeout, keepalive=keepalive, idle_timeout=idle_timeout)
    if remote_public_key is not None:
        remote_public_key = check_public_key(remote_public_key, "remote public key")
    machine = SecretStream(
        initiator=True,
        key_pair=key_pair,
        remote_public_key=remote_public_key,
        topics=topics,
        authorize=authorize is not None and remote_public_key is None,
        max_frame_size=max_frame_size,
    )
    return await _handshake(
        stream,
        machine,
        remote_address=remote_address,
        authorize=authorize,
        handshake_timeout=handshake_timeout,
        keepalive=keepalive,
        idle_timeout=idle_timeout,
    )


async def accept_handshake(
    stream: ByteStream,
    *,
    key_pair: KeyPair,
    remote_address: tuple[str, int] | None = None,
    authorize: Authorize | None = None,
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
    keepalive: float | None = DEFAULT_KEEPALIVE,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    max_frame_size: int = MAX_FRAME_SIZE,
) -> Connection:
    """Run the responder's handshake (XX or IK, whichever the initiator chose).

    ``authorize(remote_public_key, remote_address, remote_topics)``, sync or async, is
    called once the initiator's key is known and before our final handshake message;
    False closes the stream and raises :class:`~p2pswarm.errors.PeerBannedError`.
    ``remote_address`` defaults to what the socket reports.
    """
    check_times(handshake_timeout=handshake_timeout, keepalive=keepalive, idle_timeout=idle_timeout)
    machine = SecretStream(
        initiator=False,
        key_pair=key_pair,
        authorize=authorize is not None,
        max_frame_size=max_frame_size,
    )
    return await _handshake(
        stream,
        machine,
        remote_address=remote_address,
        authorize=authorize,
        handshake_timeout=handshake_timeout,
        keepalive=keepalive,
        idle_timeout=idle_timeout,
    )


async def start_connection(
    stream: ByteStream,
    machine: SecretStream,
    *,
    remote_address: tuple[str, int],
    relayed: bool = False,
    keepalive: float | None = DEFAULT_KEEPALIVE,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
) -> Connection:
    """A Connection over ``stream`` for a machine whose handshake already completed
    elsewhere (:meth:`SecretStream.from_handshake`: HyperDHT's relayed PEER_HANDSHAKE).
    Our header frame goes out now; the peer's is read by the first ``receive()``.
    On failure the stream is closed."""
    check_times(keepalive=keepalive, idle_timeout=idle_timeout)
    try:
        connection = Connection(
            stream,
            machine,
            remote_address=remote_address,
            keepalive=keepalive,
            idle_timeout=idle_timeout,
            relayed=relayed,
        )
        await stream.send(machine.data_to_send())
    except BaseException:
        machine.close()
        with anyio.CancelScope(shield=True):
            await anyio.aclose_forcefully(stream)
        raise
    return connection


#: Incoming handshakes in progress at once on one listener. A stranger can open sockets and
#: say nothing until the handshake timeout; past this many, new sockets are closed at once,
#: so a flood costs a bounded number of tasks and never starves established connections.
MAX_PENDING_HANDSHAKES: Final = 64
