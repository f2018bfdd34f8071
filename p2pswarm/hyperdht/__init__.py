"""The HyperDHT-compatible network: dht-rpc nodes (:class:`DHTRPCNode`) and, on top of them,
HyperDHT's commands and public API."""

from __future__ import annotations

from .node import DHTRPCNode

__all__ = ("DHTRPCNode",)
