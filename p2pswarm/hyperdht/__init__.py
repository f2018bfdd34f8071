"""The Hyperswarm DHT: HyperDHT's commands and records on the dht-rpc wire."""

from __future__ import annotations

__all__ = ()
