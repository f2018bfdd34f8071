"""A UDX stream as an anyio ``ByteStream``: reliable, ordered bytes over a shared UDP socket.

Shaped like udx-native's ``UDXStream``: created on a socket with a local id
(:meth:`UDXSocket.create_stream <p2pswarm.transports.udx.socket.UDXSocket.create_stream>`),
then :meth:`UDXStream.connect` to the remote's id, host and port; :meth:`change_remote`
moves a live stream (relay to direct path); :meth:`send_message` sends an unordered
datagram; :meth:`send_eof` half-closes; :meth:`destroy` aborts with a DESTROY packet.

Semantics of the anyio side:

* ``send()`` queues the item and returns once the stream holds less than libudx's high-water
  mark (256 KiB plus the send window) of unacknowledged bytes: back-pressure is the peer's
  acks. ``receive()`` returns what arrived in order; the peer's END is ``EndOfStream`` once
  everything before it was read. Data not read shrinks the advertised window, so a slow
  reader stops the sender without unbounded buffering.
* ``aclose()`` is a graceful close, like a TCP socket's close: it ends the stream and returns
  at once; the socket keeps the stream until what was written is acknowledged and the peer
  ended too (reads are discarded meanwhile), or ``linger`` seconds passed, then destroys
  it. A peer's DESTROY, or six timeouts, give ``anyio.BrokenResourceError`` caused by
  :class:`~p2pswarm.errors.UDXResetError` / :class:`~p2pswarm.errors.UDXTimeoutError`.
"""

from __future__ import annotations

import ipaddress
import socket as _socket
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import anyio
import anyio.lowlevel
from anyio.abc import ByteStream, SocketAttribute, TaskGroup

from p2pswarm.errors import UDXError
from p2pswarm.protocol.udx import Packet, UDXStreamMachine

from . import relay

__all__ = ("Address", "StreamHost", "UDXStream")

Address = tuple[str, int]


class StreamHost(Protocol):
    """What a stream needs of its socket (:class:`~.socket.UDXSocket` is the one)."""

    _tg: TaskGroup

    @property
    def closed(self) -> bool: ...

    @property
    def local_address(self) -> Address: ...

    def _send(self, data: bytes, address: Address) -> None: ...

    def _send_many(self, datagrams: list[bytes], address: Address) -> None: ...

    def _register(self, stream: UDXStream) -> None: ...

    def _unregister(self, stream: UDXStream) -> None: ...

    def _schedule(self, deadline: float | None) -> None: ...


_FAIR_EVERY = 16


def _check_address(host: str, port: int) -> tuple[str, int]:
    try:
        ip = ipaddress.IPv4Address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IPv4 address") from None
    if not 0 < port < 65536:
        raise ValueError(f"{port} is not a valid port")
    return str(ip), port


class UDXStream(ByteStream):
    """One UDX stream on a :class:`~p2pswarm.transports.udx.socket.UDXSocket`."""

    def __init__(
        self,
        socket: StreamHost,
        local_id: int,
        *,
        keepalive: float | None,
        firewall: Callable[[UDXStream, Address], bool] | None,
        linger: float,
    ) -> None:
        self._socket = socket
        self.id = local_id
        self.firewall = firewall
        self._linger = linger
        self._machine = UDXStreamMachine(local_id, now=anyio.current_time(), keepalive=keepalive)
        self.remote_address: Address | None = None
        self._event = anyio.Event()
        self._waiters = 0
        self._closed_locally = False
        self._eof_sent = False
        self._orphan = False
        self._calls = 0
        #: libudx relay_to: where our packets are forwarded, who forwards to us, and whether
        #: this stream was ever relayed (then it closes without a DESTROY of its own).
        self._relay_to: UDXStream | None = None
        self._relayed_from: list[UDXStream] = []
        self._relayed = False
        #: Packets forwarded verbatim by :meth:`relay_to`.
        self.relayed_packets = 0

    # -- udx-native shaped API ------------------------------------------------------------

    @property
    def socket(self) -> StreamHost:
        return self._socket

    @property
    def remote_id(self) -> int:
        return self._machine.remote_id

    @property
    def connected(self) -> bool:
        return self._machine.connected

    @property
    def closed(self) -> bool:
        return self._machine.closed

    @property
    def machine(self) -> UDXStreamMachine:
        """The sans-IO state (statistics: ``machine.stats``, ``rtt``, ``cc``, ``mtu``)."""
        return self._machine

    def connect(
        self, remote_id: int, host: str, port: int, *, socket: StreamHost | None = None
    ) -> None:
        """Send to stream ``remote_id`` at ``host:port`` from now on (udx-native ``connect``),
        from ``socket`` when given (udx-native's ``connect(socket, ...)``: a hole-punched
        path lives on the puncher's socket, not the one the stream was made on).

        :raises ~p2pswarm.errors.UDXError: already connected, or closed
        """
        address = _check_address(host, port)
        now = anyio.current_time()
        if socket is not None and socket is not self._socket and not self._machine.connected:
            socket._register(self)
            self._socket._unregister(self)
            self._socket = socket
        self._machine.connect(remote_id, now)
        self.remote_address = address
        self._flush(now)

    def change_remote(
        self, remote_id: int, host: str, port: int, *, socket: StreamHost | None = None
    ) -> bool:
        """Move the live stream to another remote id and address, optionally on another
        socket (relay to direct path). True when the change took effect at once; otherwise
        packets already in flight to the old remote are acknowledged first
        (:attr:`remote_changing`)."""
        address = _check_address(host, port)
        if socket is not None and socket is not self._socket:
            socket._register(self)
            self._socket._unregister(self)
            self._socket = socket
        done = self._machine.change_remote(remote_id)
        self.remote_address = address
        self._flush(anyio.current_time())
        return done

    @property
    def remote_changing(self) -> bool:
        return self._machine.remote_changing

    def send_message(self, data: bytes) -> None:
        """An unordered, unreliable datagram to the remote stream (udx-native ``trySend``)."""
        if not self._machine.connected:
            raise UDXError("the stream is not connected")
        self._machine.send_message(data)
        self._flush(anyio.current_time())

    async def receive_message(self) -> bytes:
        """The next UDX message from the remote stream."""
        while True:
            if self._machine.messages:
                return self._machine.messages.popleft()
            self._raise_if_unusable()
            await self._wait()

    def destroy(self) -> None:
        """Abort at once: one DESTROY to the peer, pending reads and writes fail. A relayed
        stream (:meth:`relay_to`) closes silently, and so do the streams relaying to it."""
        self._closed_locally = True
        machine = self._machine
        if not machine.closed:
            machine.destroy()
            if self._relayed:
                machine.poll_transmit(anyio.current_time())  # the DESTROY is not sent
            else:
                self._flush(anyio.current_time())
        self._socket._unregister(self)
        relay.unlink(self)
        self._notify()

    def relay_to(self, destination: UDXStream) -> None:
        """Forward every packet that reaches this stream to ``destination``'s remote,
        verbatim but for the receiver id (libudx ``udx_stream_relay_to``; see
        :mod:`.relay`)."""
        relay.link(self, destination)

    def _relay(self, data: bytes, address: Address) -> None:
        """From the socket's reader: one datagram for a relaying stream."""
        relay.forward(self, data, address)

    # -- ByteStream -----------------------------------------------------------------------

    async def receive(self, max_bytes: int = 65536) -> bytes:
        machine = self._machine
        waited = False
        while True:
            if self._closed_locally:
                raise anyio.ClosedResourceError
            if machine.readable:
                data = machine.read(max_bytes)
                if machine.ack_pending:
                    self._flush(anyio.current_time())
                if not waited:
                    await self._fairness()
                return data
            if machine.eof:
                raise anyio.EndOfStream
            self._raise_if_unusable()
            waited = True
            await self._wait()

    async def send(self, item: bytes) -> None:
        machine = self._machine
        while True:
            if self._closed_locally or self._eof_sent:
                raise anyio.ClosedResourceError
            self._raise_if_unusable()
            if not machine.connected:
                raise UDXError("the stream is not connected")
            if not machine.write_blocked:
                break
            await self._wait()
        machine.write(item)
        self._flush(anyio.current_time())
        await self._fairness()

    async def send_eof(self) -> None:
        if self._closed_locally:
            raise anyio.ClosedResourceError
        if self._eof_sent:
            return
        self._eof_sent = True
        self._machine.end()
        self._flush(anyio.current_time())
        await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        if not self._closed_locally:
            self._close_gracefully()
        await anyio.lowlevel.checkpoint()

    async def wait_closed(self) -> None:
        """Return once the stream is over (both ends ended, destroyed, reset or timed out)."""
        while not self._machine.closed:
            await self._wait()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {
            SocketAttribute.family: lambda: _socket.AF_INET,
            SocketAttribute.local_address: lambda: self._socket.local_address,
            SocketAttribute.local_port: lambda: self._socket.local_address[1],
            SocketAttribute.remote_address: lambda: self.remote_address,
            SocketAttribute.remote_port: lambda: (self.remote_address or ("", 0))[1],
        }

    # -- internals ------------------------------------------------------------------------

    def _close_gracefully(self) -> None:
        self._closed_locally = True
        machine = self._machine
        if machine.closed:
            self._socket._unregister(self)
        elif not machine.connected or self._linger <= 0 or self._socket.closed:
            self.destroy()
        else:
            self._orphan = True
            machine.end()
            self._flush(anyio.current_time())
            if not machine.closed:
                self._socket._tg.start_soon(self._linger_then_destroy)
        self._notify()

    async def _linger_then_destroy(self) -> None:
        with anyio.move_on_after(self._linger):
            await self.wait_closed()
        if not self._machine.closed:
            self.destroy()

    def _raise_if_unusable(self) -> None:
        machine = self._machine
        if machine.closed:
            if machine.error is not None:
                raise anyio.BrokenResourceError(str(machine.error)) from machine.error
            if not machine.eof:
                raise anyio.ClosedResourceError

    async def _fairness(self) -> None:
        self._calls += 1
        if self._calls >= _FAIR_EVERY:
            self._calls = 0
            await anyio.lowlevel.checkpoint()

    async def _wait(self) -> None:
        self._calls = 0
        self._waiters += 1
        try:
            await self._event.wait()
        finally:
            self._waiters -= 1

    def _notify(self) -> None:
        if self._waiters:
            self._event.set()
            self._event = anyio.Event()

    def _on_packet(self, packet: Packet, address: Address, now: float) -> bool:
        """From the socket's reader; True when the stream has something to flush."""
        machine = self._machine
        if not machine.connected:
            firewall = self.firewall
            if firewall is None or firewall(self, address) or not machine.connected:
                return False
        machine.receive_packet(packet, now)
        if machine.ack_due:
            self._flush(now)
        return True

    def _flush(self, now: float) -> None:
        machine = self._machine
        if self._orphan:
            while machine.readable:
                machine.read(1 << 20)
        datagrams = machine.poll_transmit(now)
        address = self.remote_address
        if datagrams and address is not None:
            self._socket._send_many(datagrams, address)
        if machine.closed:
            self._socket._unregister(self)
        else:
            self._socket._schedule(machine.next_timeout())
        self._notify()
