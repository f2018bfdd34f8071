"""Probing the local network's ports: free, a p2pswarm node, or something else.

On loopback a bind is the truth about whether a UDP port is free; a DHT ping tells a
p2pswarm bootstrap (it answers with its node id) from anything else holding the port.
"""

from __future__ import annotations

import socket
from typing import Final

from ..dht import DHTNode
from ..errors import DHTError

__all__ = ("LOCAL_HOST", "PortState", "ping_id", "probe_node", "probe_port", "udp_port_free")

LOCAL_HOST: Final = "127.0.0.1"
#: Probe timing: a silent port is declared foreign after about 1.2 s (0.1+0.2+0.4+0.5).
PROBE_TIMEOUT: Final = 0.5
PROBE_FIRST_RETRANSMIT: Final = 0.1
PROBE_RETRIES: Final = 3


class PortState:
    """What one port of the local range holds (the result of :func:`probe_port`)."""

    FREE: Final = "free"
    P2PSWARM: Final = "p2pswarm"
    FOREIGN: Final = "foreign"

    __slots__ = ("kind", "node_id", "port")

    def __init__(self, port: int, kind: str, node_id: bytes | None = None) -> None:
        self.port = port
        self.kind = kind
        self.node_id = node_id

    def __repr__(self) -> str:
        node = f" node={self.node_id.hex()[:12]}" if self.node_id else ""
        return f"<PortState {LOCAL_HOST}:{self.port} {self.kind}{node}>"


def udp_port_free(port: int) -> bool:
    """True when nobody holds UDP ``127.0.0.1:port``: on loopback the bind is the truth."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind((LOCAL_HOST, port))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def probe_node() -> DHTNode:
    return DHTNode(
        bootstrap=[],
        host=LOCAL_HOST,
        port=0,
        ephemeral=True,
        request_timeout=PROBE_TIMEOUT,
        first_retransmit=PROBE_FIRST_RETRANSMIT,
        retries=PROBE_RETRIES,
    )


async def ping_id(probe: DHTNode, port: int) -> bytes | None:
    """The node id answering on ``port``, or None when nothing answers as a persistent node.

    An ephemeral p2pswarm node (some swarm's own DHT socket that happened to get this port)
    answers without an id: it cannot serve as a bootstrap, so it counts as foreign too.
    """
    try:
        response = await probe.ping((LOCAL_HOST, port))
    except DHTError:
        return None
    return response.node_id


async def probe_port(port: int, probe: DHTNode | None = None) -> PortState:
    """Say what holds ``127.0.0.1:port`` without taking it (used by ``p2pswarm status``)."""
    if udp_port_free(port):
        return PortState(port, PortState.FREE)
    if probe is None:
        async with probe_node() as own_probe:
            node_id = await ping_id(own_probe, port)
    else:
        node_id = await ping_id(probe, port)
    if node_id is None:
        return PortState(port, PortState.FOREIGN)
    return PortState(port, PortState.P2PSWARM, node_id)
