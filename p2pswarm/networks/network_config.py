"""Where discovery starts, as configured: the environment, the command line, port ranges.

Pure parsing with clear errors, shared by the local network, the CLI and applications:
``P2PSWARM_BOOTSTRAP`` / ``--bootstrap`` name the DHT nodes of a real network, and
``P2PSWARM_LOCAL_PORT`` / ``--local-port`` move the embedded local network.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = (
    "BOOTSTRAP_ENV",
    "DEFAULT_LOCAL_PORT",
    "FALLBACK_PORTS",
    "MAX_BOOTSTRAP_ENTRIES",
    "PORT_ENV",
    "bootstrap_from_env",
    "check_port",
    "local_port_from_env",
    "parse_bootstrap",
)

Address = tuple[str, int]

#: Hyperswarm's default DHT port; the local network's base port, on loopback only.
DEFAULT_LOCAL_PORT: Final = 49737
PORT_ENV: Final = "P2PSWARM_LOCAL_PORT"
BOOTSTRAP_ENV: Final = "P2PSWARM_BOOTSTRAP"
#: The local network lives on the first usable port of ``port .. port + FALLBACK_PORTS - 1``.
FALLBACK_PORTS: Final = 8
#: A bootstrap list from the environment or the command line holds at most this many entries.
MAX_BOOTSTRAP_ENTRIES: Final = 64


def check_port(value: int, what: str) -> int:
    if not 1 <= value <= 0xFFFF - FALLBACK_PORTS + 1:
        raise ValueError(f"{what} must be 1..{0xFFFF - FALLBACK_PORTS + 1}, got {value}")
    return value


def local_port_from_env() -> int:
    """The local network's base port: ``P2PSWARM_LOCAL_PORT`` if set, else 49737."""
    text = os.environ.get(PORT_ENV, "").strip()
    if not text:
        return DEFAULT_LOCAL_PORT
    try:
        return check_port(int(text, 10), PORT_ENV)
    except ValueError as exc:
        raise ValueError(f"{PORT_ENV}={text!r} is not a port number: {exc}") from None


def parse_bootstrap(text: str) -> list[Address]:
    """Parse ``host:port,host:port`` (IPv6 as ``[::1]:port``) into a bootstrap list.

    Raises ValueError with a message naming the bad entry; an empty string is an error too,
    because "no bootstrap" is spelled by leaving the option out.
    """
    entries = [part.strip() for part in text.split(",") if part.strip()]
    if not entries:
        raise ValueError("bootstrap list is empty (expected host:port[,host:port...])")
    if len(entries) > MAX_BOOTSTRAP_ENTRIES:
        raise ValueError(f"at most {MAX_BOOTSTRAP_ENTRIES} bootstrap nodes")
    result: list[Address] = []
    for entry in entries:
        if entry.startswith("["):
            host, sep, rest = entry[1:].partition("]")
            if not sep or not rest.startswith(":"):
                raise ValueError(f"bad bootstrap address {entry!r} (expected [ipv6]:port)")
            port_text = rest[1:]
        else:
            host, sep, port_text = entry.rpartition(":")
            if not sep or ":" in host:
                raise ValueError(f"bad bootstrap address {entry!r} (expected host:port)")
        if not host or not port_text.isdigit() or not 1 <= int(port_text) <= 0xFFFF:
            raise ValueError(f"bad bootstrap address {entry!r} (expected host:port)")
        result.append((host, int(port_text)))
    return result


def bootstrap_from_env() -> list[Address] | None:
    """The bootstrap list in ``P2PSWARM_BOOTSTRAP``, or None when it is unset or empty."""
    text = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if not text:
        return None
    try:
        return parse_bootstrap(text)
    except ValueError as exc:
        raise ValueError(f"{BOOTSTRAP_ENV}: {exc}") from None
