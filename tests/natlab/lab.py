"""Build a small internet of network namespaces: a public bridge, NAT routers, hosts behind them.

Layout (``P`` is the lab's namespace prefix, ``i`` a site's index)::

    P-pub      the "public internet": bridge br0, 10.200.0.1-10/16 for the DHT's bootstrap
               nodes (and the UDP probes), one bridge port per site
    P-s{i}r    the site's NAT router: wan 10.200.10.{i}/16 on the bridge, lan 10.{i}.0.1/24
    P-s{i}c    the carrier's router of a double NAT: wan on the bridge, lan 100.64.{i}.1/24
               (the home router's wan is then 100.64.{i}.2)
    P-s{i}h    the host: 10.{i}.0.2/24, default route via its router (kind ``none``: the host
               sits on the bridge itself with 10.200.10.{i})

Nothing is connected to the machine's own namespace: the namespaces are created empty, the
veth pairs are made directly inside them, there is no route towards any real interface, and
forwarding is switched on only inside the router namespaces. :class:`Lab` is a context manager
that deletes every namespace of its prefix and kills every process it started, also when the
build or a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.natlab.nat import KINDS, router_rules

__all__ = (
    "PUBLIC_IPS",
    "SKIP_REASON",
    "Lab",
    "LabError",
    "Site",
    "cleanup_stale",
    "read_json_line",
)

HERE = Path(__file__).resolve().parent

#: The public bridge's own addresses: the DHT's bootstrap nodes and the probes live on them.
PUBLIC_IPS = tuple(f"10.200.0.{n}" for n in range(1, 11))
PUBLIC_PREFIX = 16
NS_PREFIX = "natlab"


def _skip_reason() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "the NAT lab needs root (network namespaces and nftables)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"the NAT lab needs `{tool}` (run scripts/_netlab_deps.sh as root)"
    # Really try: a container may let root list namespaces but not make them, or lack nf_tables.
    name = f"{NS_PREFIX}-{os.getpid()}-check"
    steps = (
        ["ip", "netns", "add", name],
        ["ip", "netns", "exec", name, "nft", "add", "table", "ip", "natlab"],
    )
    try:
        for argv in steps:
            done = subprocess.run(argv, capture_output=True, check=False)
            if done.returncode != 0:
                err = done.stderr.decode(errors="replace").strip()
                return f"the NAT lab cannot run here: `{' '.join(argv[:3])}` failed: {err}"
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
    return None


#: Why the lab cannot run here, or None when it can.
SKIP_REASON: str | None = _skip_reason()


class LabError(RuntimeError):
    """Building the lab or running something inside it failed."""


@dataclass(frozen=True)
class Site:
    """One host on the lab's internet, behind its NAT (or none)."""

    kind: str
    index: int
    #: The namespace the host's programs run in.
    host_ns: str
    #: The host's own address (behind its NAT).
    host_ip: str
    #: The address the public internet sees for it (its outermost router's WAN address).
    public_ip: str
    #: Its router namespaces, innermost first.
    routers: tuple[str, ...] = field(default=())


def _run(argv: list[str], stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _namespaces() -> list[str]:
    out = _run(["ip", "netns", "list"])
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def cleanup_stale() -> list[str]:
    """Delete the namespaces of labs whose process is gone (a run killed before its cleanup)."""
    removed = []
    for name in _namespaces():
        parts = name.split("-")
        if len(parts) < 3 or parts[0] != NS_PREFIX or not parts[1].isdigit():
            continue
        try:
            os.kill(int(parts[1]), 0)
        except ProcessLookupError:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
            removed.append(name)
        except PermissionError:
            continue
    return removed


def read_json_line(proc: subprocess.Popen[str], deadline: float) -> dict[str, Any] | None:
    """The next JSON line ``proc`` prints, or None at EOF or when ``deadline`` passes."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return None
            line = proc.stdout.readline()
            if not line:
                return None
            line = line.strip()
            if line.startswith("{"):
                message: dict[str, Any] = json.loads(line)
                return message


class Lab:
    """A lab's namespaces and processes; use it as a context manager."""

    def __init__(self, tag: str = "0") -> None:
        self.prefix = f"{NS_PREFIX}-{os.getpid()}-{tag}"
        self.public_ns = f"{self.prefix}-pub"
        self.sites: list[Site] = []
        self._namespaces: list[str] = []
        self._procs: list[subprocess.Popen[str]] = []

    # -- life cycle ------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        if SKIP_REASON is not None:
            raise LabError(SKIP_REASON)
        try:
            self._build_public()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Kill every process started here, then delete every namespace of this prefix."""
        for proc in self._procs:
            self.stop(proc)
        self._procs.clear()
        for name in _namespaces():
            if name == self.prefix or name.startswith(self.prefix + "-"):
                subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
        self._namespaces.clear()

    # -- running things inside ---------------------------------------------------------------

    def run(self, ns: str, argv: list[str], stdin: str | None = None) -> str:
        """Run ``argv`` inside namespace ``ns`` to completion; its stdout."""
        return _run(["ip", "netns", "exec", ns, *argv], stdin=stdin)

    def spawn(self, ns: str, argv: list[str], env: dict[str, str] | None = None) -> Any:
        """Start ``argv`` inside ``ns`` (text pipes); it is killed when the lab closes."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=env,
        )
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[str]) -> str:
        """Kill ``proc``'s process group, reap it; the end of what it wrote on stderr."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        tail = ""
        if proc.stderr is not None and not proc.stderr.closed:
            with contextlib.suppress(OSError, ValueError):
                tail = proc.stderr.read()[-2000:]
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        return tail

    def reset_filters(self) -> None:
        """Forget the learned mappings of every full-cone / address-restricted router."""
        for site in self.sites:
            for router in site.routers:
                if site.kind in ("full-cone", "address-restricted"):
                    name = "mapped" if site.kind == "full-cone" else "allowed"
                    self.run(router, ["nft", "flush", "set", "ip", "natlab", name])

    # -- building ---------------------------------------------------------------------------

    def _netns(self, name: str) -> str:
        _run(["ip", "netns", "add", name])
        self._namespaces.append(name)
        self.run(name, ["ip", "link", "set", "lo", "up"])
        return name

    def _veth(self, ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
        peer = ["peer", "name", name_b, "netns", ns_b]
        _run(["ip", "link", "add", name_a, "netns", ns_a, "type", "veth", *peer])

    def _addr(self, ns: str, dev: str, cidr: str) -> None:
        self.run(ns, ["ip", "addr", "add", cidr, "dev", dev])
        self.run(ns, ["ip", "link", "set", dev, "up"])

    def _build_public(self) -> None:
        ns = self._netns(self.public_ns)
        self.run(ns, ["ip", "link", "add", "br0", "type", "bridge"])
        for ip in PUBLIC_IPS:
            self.run(ns, ["ip", "addr", "add", f"{ip}/{PUBLIC_PREFIX}", "dev", "br0"])
        self.run(ns, ["ip", "link", "set", "br0", "up"])

    def _plug(self, ns: str, index: int, tag: str) -> None:
        """A veth from ``ns`` (named ``wan``) to a new port of the public bridge."""
        port = f"p{index}{tag}"
        self._veth(ns, "wan", self.public_ns, port)
        self.run(self.public_ns, ["ip", "link", "set", port, "master", "br0"])
        self.run(self.public_ns, ["ip", "link", "set", port, "up"])

    def _router(self, name: str, layer: str, inside: str) -> str:
        ns = self._netns(name)
        self.run(ns, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        self.run(ns, ["nft", "-f", "-"], stdin=router_rules(layer, inside))
        return ns

    def add_site(self, kind: str) -> Site:
        """Build one more host behind a NAT of ``kind`` (one of :data:`KINDS`)."""
        if kind not in KINDS:
            raise ValueError(f"no such NAT kind: {kind}")
        i = len(self.sites) + 1
        if i > 200:
            raise LabError("at most 200 sites")
        public = f"10.200.10.{i}"
        host_ns = self._netns(f"{self.prefix}-s{i}h")
        if kind == "none":
            self._plug(host_ns, i, "h")
            self._addr(host_ns, "wan", f"{public}/{PUBLIC_PREFIX}")
            site = Site(kind, i, host_ns, public, public)
            self.sites.append(site)
            return site
        host_ip = f"10.{i}.0.2"
        routers: list[str] = []
        if kind == "double-nat":
            home_wan = f"100.64.{i}.2"
            home = self._router(f"{self.prefix}-s{i}r", "port-restricted", host_ip)
            carrier = self._router(f"{self.prefix}-s{i}c", "cgnat", home_wan)
            self._veth(home, "wan", carrier, "lan")
            self._addr(home, "wan", f"{home_wan}/24")
            self._addr(carrier, "lan", f"100.64.{i}.1/24")
            self.run(home, ["ip", "route", "add", "default", "via", f"100.64.{i}.1"])
            self._plug(carrier, i, "c")
            self._addr(carrier, "wan", f"{public}/{PUBLIC_PREFIX}")
            routers = [home, carrier]
        else:
            home = self._router(f"{self.prefix}-s{i}r", kind, host_ip)
            self._plug(home, i, "r")
            self._addr(home, "wan", f"{public}/{PUBLIC_PREFIX}")
            routers = [home]
        self._veth(host_ns, "lan", home, "lan")
        self._addr(host_ns, "lan", f"{host_ip}/24")
        self._addr(home, "lan", f"10.{i}.0.1/24")
        self.run(host_ns, ["ip", "route", "add", "default", "via", f"10.{i}.0.1"])
        site = Site(kind, i, host_ns, host_ip, public, tuple(routers))
        self.sites.append(site)
        return site
