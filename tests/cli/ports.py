"""Private local-network ports for tests, so they never meet a user's network or each other.

A base port is drawn at random below the kernel's ephemeral range and kept only when the
whole fallback range above it is free (UDP and TCP), then reserved for this test session.
"""

from __future__ import annotations

import random
import socket

from p2pswarm.networks.local_network import FALLBACK_PORTS

_reserved: set[int] = set()


def _free(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        probe = socket.socket(socket.AF_INET, kind)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            probe.close()
    return True


def free_base_port() -> int:
    """A base port whose whole local-network range is free right now (never 49737)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000 - FALLBACK_PORTS)
        span = range(base, base + FALLBACK_PORTS)
        if any(p in _reserved for p in span):
            continue
        if all(_free(p) for p in span):
            _reserved.update(span)
            return base
    raise RuntimeError("no free port range for a test local network")
