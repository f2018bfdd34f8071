"""Transports that carry p2pswarm connections. :mod:`.udx` is UDX over UDP (libudx's
wire); the TCP transport is :mod:`p2pswarm.transport` for now."""

from __future__ import annotations

__all__ = ()
