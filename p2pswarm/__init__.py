"""p2pswarm: find peers by topic and talk over end-to-end encrypted streams.

The Hyperswarm model for Python: a :class:`Swarm` joins 32-byte topics through a Kademlia
DHT, and every connection is a Noise-encrypted duplex stream authenticated by the peers'
Ed25519 public keys, wire-identical to Hyperswarm's secret stream.
"""

from __future__ import annotations

# Imported for its registration: ``Swarm.set_info`` reaches node info through a hook.
from . import errors as errors, node_info as node_info, testing as testing
from .connection import Connection as Connection, ConnectionAttribute as ConnectionAttribute
from .errors import (
    DHTError as DHTError,
    DHTTimeoutError as DHTTimeoutError,
    DialError as DialError,
    DialRefusedError as DialRefusedError,
    DuplicateConnectionError as DuplicateConnectionError,
    HandshakeError as HandshakeError,
    HandshakeRefusedError as HandshakeRefusedError,
    HandshakeTimeoutError as HandshakeTimeoutError,
    IdleTimeoutError as IdleTimeoutError,
    KeyFileError as KeyFileError,
    LocalProtocolError as LocalProtocolError,
    P2PSwarmError as P2PSwarmError,
    PeerBannedError as PeerBannedError,
    PeerNotFoundError as PeerNotFoundError,
    ProtocolError as ProtocolError,
    RemoteProtocolError as RemoteProtocolError,
    SwarmClosedError as SwarmClosedError,
)
from .keys import KeyPair as KeyPair, topic as topic
from .peer_record import (
    AddressKind as AddressKind,
    PeerAddress as PeerAddress,
    PeerRecord as PeerRecord,
)
from .swarm import Firewall as Firewall, Swarm as Swarm, SwarmStats as SwarmStats
from .swarm._policy import Limits as Limits
from .swarm.discovery import PeerDiscovery as PeerDiscovery, TopicDiscovery as TopicDiscovery
from .swarm.peer_info import PeerInfo as PeerInfo
from .transports.base import Dialer as Dialer
from .transports.tcp import (
    ConnectionListener as ConnectionListener,
    TCPDialer as TCPDialer,
    connect_tcp as connect_tcp,
    create_tcp_listener as create_tcp_listener,
)

__version__ = "0.1.0"

__all__ = (
    "AddressKind",
    "Connection",
    "ConnectionAttribute",
    "ConnectionListener",
    "DHTError",
    "DHTTimeoutError",
    "DialError",
    "DialRefusedError",
    "Dialer",
    "DuplicateConnectionError",
    "Firewall",
    "HandshakeError",
    "HandshakeRefusedError",
    "HandshakeTimeoutError",
    "IdleTimeoutError",
    "KeyFileError",
    "KeyPair",
    "Limits",
    "LocalProtocolError",
    "P2PSwarmError",
    "PeerAddress",
    "PeerBannedError",
    "PeerDiscovery",
    "PeerInfo",
    "PeerNotFoundError",
    "PeerRecord",
    "ProtocolError",
    "RemoteProtocolError",
    "Swarm",
    "SwarmClosedError",
    "SwarmStats",
    "TCPDialer",
    "TopicDiscovery",
    "connect_tcp",
    "create_tcp_listener",
    "errors",
    "testing",
    "topic",
)
