"""Measure a site's NAT behaviour with UDP probes: its mapping and its filtering.

The host sends from one port to A = (10.200.0.1, 7001) and C = (10.200.0.2, 7001); what A and C
see as its source tells whether the mapping depends on the destination. Then the public side
sends to the address A saw, from D = (10.200.0.3, 7001) (an address the host never sent to),
from B = (10.200.0.1, 7002) (a known address, a new port) and last from A itself, a marker
that every NAT lets through. Packets on one path arrive in order, so whatever has not arrived
before the marker was dropped: no sleeps, no timing.

``python -m tests.natlab.probes`` prints the table for all six kinds.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from tests.natlab.lab import HERE, Lab, LabError, Site, read_json_line
from tests.natlab.nat import KINDS

__all__ = ("Behaviour", "probe_site")

AGENT = str(HERE / "udp_agent.py")
HOST_PORT = 5555
BOUND_S = 10.0


class _Agent:
    def __init__(self, lab: Lab, ns: str, binds: list[str]) -> None:
        self.proc = lab.spawn(ns, [sys.executable, AGENT, *binds])
        self._expect("ready")

    def _expect(self, key: str) -> dict[str, Any]:
        message = read_json_line(self.proc, time.monotonic() + BOUND_S)
        if message is None or key not in message:
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            raise LabError(f"udp agent said {message!r}, wanted {key!r} {err}")
        return message

    def _cmd(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        message = read_json_line(self.proc, time.monotonic() + BOUND_S)
        if message is None:
            raise LabError("udp agent went quiet")
        return message

    def send(self, sock: int, to: tuple[str, int], data: str) -> None:
        self._expect_ok(self._cmd({"op": "send", "sock": sock, "to": list(to), "data": data}))

    @staticmethod
    def _expect_ok(reply: dict[str, Any]) -> None:
        if not reply.get("ok"):
            raise LabError(f"udp agent: {reply!r}")

    def recv(self, sock: int) -> tuple[tuple[str, int], str]:
        reply = self._cmd({"op": "recv", "sock": sock})
        if "from" not in reply:
            raise LabError(f"a probe that must arrive did not: {reply!r}")
        return (reply["from"][0], int(reply["from"][1])), str(reply["data"])


@dataclass(frozen=True)
class Behaviour:
    """What the probes saw of one site's NAT."""

    #: The host's address:port as A saw it.
    mapped: tuple[str, int]
    #: Whether C saw the same address:port (endpoint-independent mapping).
    same_mapping: bool
    #: Whether a packet from an address the host never sent to came in.
    from_new_address: bool
    #: Whether a packet from a known address but a new port came in.
    from_new_port: bool


def probe_site(lab: Lab, site: Site) -> Behaviour:
    """Probe ``site``'s NAT (the lab's public namespace plays the remote side)."""
    a, b = ("10.200.0.1", 7001), ("10.200.0.1", 7002)
    c, d = ("10.200.0.2", 7001), ("10.200.0.3", 7001)
    public = _Agent(lab, lab.public_ns, [f"{h}:{p}" for h, p in (a, b, c, d)])
    host = _Agent(lab, site.host_ns, [f"0.0.0.0:{HOST_PORT}"])
    try:
        host.send(0, a, "to-a")
        mapped, _ = public.recv(0)
        host.send(0, c, "to-c")
        mapped_c, _ = public.recv(2)
        public.send(3, mapped, "from-d")
        public.send(1, mapped, "from-b")
        public.send(0, mapped, "marker")
        got = set()
        while True:
            _, data = host.recv(0)
            if data == "marker":
                break
            got.add(data)
    finally:
        lab.stop(public.proc)
        lab.stop(host.proc)
    return Behaviour(mapped, mapped == mapped_c, "from-d" in got, "from-b" in got)


def main() -> None:
    with Lab("probe") as lab:
        for kind in KINDS:
            site = lab.add_site(kind)
            print(json.dumps({"kind": kind, **probe_site(lab, site).__dict__}), flush=True)


if __name__ == "__main__":
    main()
