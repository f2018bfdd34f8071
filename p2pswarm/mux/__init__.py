"""Channels over one connection, wire-compatible with JS protomux 3.12.1.

Many independent channels share one :class:`~p2pswarm.connection.Connection`; a JS peer
using ``protomux`` (``Protomux.from(secretStream)``) sees the same channels. The wire and
the state machine live in :mod:`p2pswarm.protocol.protomux` (sans-IO); this package is the
I/O around it. Public API (stable; :mod:`p2pswarm.rpc` and gossip build on it)::

    mux = Mux.of(connection)                       # one Mux per connection (Protomux.from)
    channel = mux.create_channel(
        "my-protocol/1", id=None,                  # pairing key: protocol + id
        handshake=JSON,                            # codec of the open's handshake, or None
        messages=[JSON, (RAW, on_raw), None],      # type 0, 1, 2 (None: a skipped type)
        on_open=on_open,                           # (remote_handshake, channel), sync/async
        on_close=on_close,                         # (remote: bool, channel), sync/async
    )                                              # None if one is open already (unique)
    channel.open({"hello": 1})                     # sync: queued, sent once the Mux runs
    async with mux:                                # or: await mux.run() in a task
        if await channel.fully_opened():           # both sides opened (False: rejected)
            await channel.messages[0].send({"x": 1})   # waits until written (back-pressure)
            channel.messages[0].send_nowait(...)       # queue; returns the drained hint
            with mux.corked():                         # one batch (JS cork/uncork)
                ...
            async for value in channel.messages[0]:    # without on_message: a bounded
                ...                                    # queue (full: reading pauses)
        channel.close()

    mux.pair("my-protocol/1", notify)              # notify(id) when the peer opens one we
                                                   # lack; without it such opens are rejected
    mux.opened(protocol, id) -> bool;  mux.channels;  mux.drained;  await mux.flush()
    mux.start_soon(fn, *args)                      # a task that lives as long as the Mux

Handlers run one at a time in the Mux's dispatcher task, in wire order; an async handler
is awaited before the next message is delivered (so a slow handler slows its peer, not
memory). A handler that raises closes the connection, as in JS. Messages for unknown or
closed channels and unknown types are ignored like JS does; a malformed message (or one
its codec refuses) closes the connection with a typed
:class:`~p2pswarm.errors.ChannelProtocolError`.

:class:`SwarmMux` shares one Mux per swarm connection between protocols (rpc, gossip):
``SwarmMux.of(swarm).on_mux(setup)`` calls ``setup(mux, peer_info)`` for every connection
before its Mux reads anything, so both sides' channels pair deterministically.
"""

from __future__ import annotations

from ._channel import Channel, Message, OnClose, OnMessage, OnOpen
from ._mux import DEFAULT_QUEUE_SIZE, MessageSpec, Mux, Notify
from .codecs import JSON, RAW, STRING, UINT, Codec, CompactCodec, JSONCodec, RawCodec
from .swarm import SwarmMux

__all__ = (
    "DEFAULT_QUEUE_SIZE",
    "JSON",
    "RAW",
    "STRING",
    "UINT",
    "Channel",
    "Codec",
    "CompactCodec",
    "JSONCodec",
    "Message",
    "MessageSpec",
    "Mux",
    "Notify",
    "OnClose",
    "OnMessage",
    "OnOpen",
    "RawCodec",
    "SwarmMux",
)
