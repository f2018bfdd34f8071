"""The HyperDHT-compatible network: dht-rpc nodes (:class:`DHTRPCNode`) and, on top of them,
HyperDHT's commands and public API (:class:`HyperDHT`).

Layers, bottom up: ``protocol/dht_rpc.py`` and ``protocol/hyperdht_messages.py`` (sans-IO
codecs), :mod:`.records` (what is signed), :mod:`.storage` and :mod:`.serving` (what a
storing node keeps and answers, pure), the dht-rpc node (:mod:`.node`, :mod:`.core`,
:mod:`.iterative`, ...), then :mod:`.dht` (the HyperDHT client and server) and
:mod:`.testnet`.
"""

from __future__ import annotations

from ..protocol.hyperdht_messages import Peer
from .dht import (
    PUBLIC_BOOTSTRAP,
    PUBLIC_BOOTSTRAP_NAMES,
    HyperDHT,
    Lookup,
    LookupReply,
    MutableValue,
    PeerReply,
)
from .node import DHTRPCNode
from .testnet import Testnet, create_testnet

__all__ = (
    "PUBLIC_BOOTSTRAP",
    "PUBLIC_BOOTSTRAP_NAMES",
    "DHTRPCNode",
    "HyperDHT",
    "Lookup",
    "LookupReply",
    "MutableValue",
    "Peer",
    "PeerReply",
    "Testnet",
    "create_testnet",
)
