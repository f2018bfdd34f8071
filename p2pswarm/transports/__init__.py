"""Transports: how bytes travel between two peers, each behind the same two interfaces.

* :mod:`.base`: the :class:`~.base.Dialer` and :class:`~.base.Transport` interfaces the
  swarm depends on.
* :mod:`._handshake`: the secret-stream handshake pump over any connected byte stream,
  shared by every transport.
* :mod:`.tcp` (with the lean asyncio stream, :mod:`._asyncio_stream`): TCP, and the direct
  ``connect_tcp`` / ``create_tcp_listener`` API.

A new transport (UDX next) is a module or package beside ``tcp``. Nothing here imports the
swarm or a discovery network. The public names are re-exported by :mod:`p2pswarm`.
"""

from __future__ import annotations

__all__ = ()
