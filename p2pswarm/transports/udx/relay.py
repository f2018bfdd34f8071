"""libudx ``relay_to``: a stream that forwards what reaches it instead of reading it.

A blind relay joins two peers by pairing one stream towards each: every packet that
reaches the first is sent on, verbatim but for bytes 4-7 (the receiver id, rewritten to
the second stream's remote id), from the second stream's socket to the second stream's
remote. Nothing is decoded or acknowledged here: the two ends run UDX with each other
through the relay. Kept apart from :mod:`.stream` because it is the one path on which a
stream's packets never reach its state machine.

Rules, as libudx's: until the destination is connected, packets are dropped; a DESTROY is
forwarded and then closes the relaying stream; destroying either stream of a pair closes
both, without a DESTROY of their own (the ends' own DESTROY travels through instead).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from p2pswarm.errors import UDXError
from p2pswarm.protocol.udx import UDXStreamMachine
from p2pswarm.protocol.udx.packet import DESTROY

__all__ = ("RelayEnd", "forward", "link", "unlink")

Address = tuple[str, int]


class _Sender(Protocol):
    def _send(self, data: bytes, address: Address) -> None: ...


class RelayEnd(Protocol):
    """What relaying needs of a stream (:class:`~.stream.UDXStream` is the one); a protocol
    so that this module does not import the stream's."""

    _machine: UDXStreamMachine
    _relay_to: Any  # RelayEnd | None
    _relayed_from: list[Any]  # list[RelayEnd]
    _relayed: bool
    relayed_packets: int
    remote_address: Address | None
    firewall: Callable[[Any, Address], bool] | None

    @property
    def _socket(self) -> _Sender: ...

    @property
    def connected(self) -> bool: ...

    @property
    def closed(self) -> bool: ...

    @property
    def remote_id(self) -> int: ...

    def destroy(self) -> None: ...


def link(source: RelayEnd, destination: RelayEnd) -> None:
    """Make ``source`` forward to ``destination`` (``source.relay_to(destination)``)."""
    if source._relayed or destination.closed:
        raise UDXError("the stream is already relayed, or its destination is closed")
    source._relayed = True
    source._relay_to = destination
    destination._relayed_from.append(source)


def forward(source: RelayEnd, data: bytes, address: Address) -> None:
    """One datagram from ``address`` for the relaying stream ``source``."""
    if not source._machine.connected:
        firewall = source.firewall
        if firewall is None or firewall(source, address) or not source._machine.connected:
            return
    destination = source._relay_to
    if destination is None:
        return
    target = destination.remote_address
    if destination.connected and target is not None:
        source.relayed_packets += 1
        header = destination.remote_id.to_bytes(4, "little")
        destination._socket._send(data[:4] + header + data[8:], target)
    if data[2] & DESTROY:
        source.destroy()


def unlink(stream: RelayEnd) -> None:
    """``stream`` is being destroyed: drop its links, and destroy the streams relaying to it."""
    destination = stream._relay_to
    stream._relay_to = None
    if destination is not None and stream in destination._relayed_from:
        destination._relayed_from.remove(stream)
    sources, stream._relayed_from = stream._relayed_from, []
    for source in sources:
        source._relay_to = None
        source.destroy()
