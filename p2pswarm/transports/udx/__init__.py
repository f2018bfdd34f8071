"""UDX streams over a real UDP socket: the I/O edge of :mod:`p2pswarm.protocol.udx`.

:func:`open_udx_socket` binds a socket; :meth:`UDXSocket.create_stream` makes a stream,
:meth:`UDXStream.connect` points it at a remote stream. :mod:`.dialer` runs the encrypted
:class:`~p2pswarm.connection.Connection` over it.
"""

from __future__ import annotations

from .dialer import UDXDialer, accept_udx, connect_udx
from .faults import Faults
from .socket import Address, MessageHandler, UDXSocket, open_udx_socket
from .stream import UDXStream

__all__ = (
    "Address",
    "Faults",
    "MessageHandler",
    "UDXDialer",
    "UDXSocket",
    "UDXStream",
    "accept_udx",
    "connect_udx",
    "open_udx_socket",
)
