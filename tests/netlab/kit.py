"""A small network lab: Linux network namespaces as hosts on one private Ethernet.

Each host is a namespace with a veth link (``eth0``, 10.231.0.N/24) whose other end sits
on a bridge in a hub namespace of its own, so nothing is added to the machine's own
namespace and no address here can route anywhere outside the lab. Everything is made
with ``ip`` and deleted at teardown (deleting a namespace deletes its links), even when
setup failed half-way. Needs root and ``ip netns``; :func:`unavailable` says why not.

Faults, on a host's own side of its link (they go with its namespace at teardown):
:meth:`Lab.drop` (nftables ``numgen random`` on what the host sends, so a percentage on
every host is that loss on each direction of every path), :meth:`Lab.rate` (a ``tbf``
qdisc on ``eth0``), and :meth:`Lab.unplug` / :meth:`Lab.plug` (the hub's end of the
host's cable set down or up: the host sees no carrier, as with a pulled cable). This
kernel has no ``tc netem``; delay comes from the UDX fault hook
(:class:`p2pswarm.transports.udx.Faults`) inside the processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ("SUBNET", "Host", "Lab", "fault_tools_missing", "unavailable")

#: The lab's private subnet (RFC 1918); hosts are .1, .2, ...
SUBNET = "10.231.0"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def unavailable() -> str | None:
    """Why a lab cannot be built here (a reason to skip with), or None when it can."""
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs the lab as root)"
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is not installed"
    probe = f"p2pswarm-probe-{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        stderr = getattr(exc, "stderr", b"") or b""
        return f"'ip netns add' does not work here: {stderr.decode().strip() or exc}"
    _ip("netns", "delete", probe)
    return None


def fault_tools_missing() -> str | None:
    """Why :meth:`Lab.drop` / :meth:`Lab.rate` cannot run here, or None."""
    for tool, package in (("nft", "nftables"), ("tc", "iproute2")):
        if shutil.which(tool) is None:
            return f"the '{tool}' command ({package}) is not installed"
    return None


@dataclass(frozen=True)
class Host:
    """One namespace on the lab's Ethernet."""

    namespace: str
    address: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.namespace, *argv]


@dataclass
class Lab:
    """``hosts`` namespaces joined by a bridge; use as a context manager."""

    size: int
    prefix: str = field(default_factory=lambda: f"p2ps{os.getpid() % 100000}")
    hosts: list[Host] = field(default_factory=list)
    _namespaces: list[str] = field(default_factory=list)

    def __enter__(self) -> Lab:
        try:
            self._build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def _namespace(self, name: str) -> str:
        namespace = f"{self.prefix}-{name}"
        _ip("netns", "add", namespace)
        self._namespaces.append(namespace)
        _ip("-n", namespace, "link", "set", "lo", "up")
        return namespace

    def _build(self) -> None:
        hub = self._namespace("hub")
        _ip("-n", hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", hub, "link", "set", "br0", "up")
        for index in range(1, self.size + 1):
            namespace = self._namespace(f"h{index}")
            port = f"p{index}"
            # Made in the host's namespace, the far end moved onto the hub's bridge.
            _ip("-n", namespace, "link", "add", "eth0", "type", "veth", "peer", "name", port)
            _ip("-n", namespace, "link", "set", port, "netns", hub)
            _ip("-n", hub, "link", "set", port, "master", "br0")
            _ip("-n", hub, "link", "set", port, "up")
            address = f"{SUBNET}.{index}"
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")
            self.hosts.append(Host(namespace, address))

    @property
    def hub(self) -> str:
        return f"{self.prefix}-hub"

    def _exec(self, host: Host, *argv: str) -> None:
        subprocess.run(host.command(argv), check=True, capture_output=True, timeout=30)

    def drop(self, host: Host, percent: int) -> None:
        """Drop ``percent`` % of the packets ``host`` sends on its link, at random."""
        if not 0 < percent < 100:
            raise ValueError("a drop rate is a percentage between 0 and 100")
        rules = (
            "table inet lab_faults {\n"
            " chain egress {\n"
            "  type filter hook output priority 0; policy accept;\n"
            f'  oifname "eth0" numgen random mod 100 < {percent} drop\n'
            " }\n"
            "}\n"
        )
        subprocess.run(
            host.command(["nft", "-f", "-"]),
            input=rules.encode(),
            check=True,
            capture_output=True,
            timeout=30,
        )

    def undrop(self, host: Host) -> None:
        """Take :meth:`drop`'s rule away again."""
        self._exec(host, "nft", "delete", "table", "inet", "lab_faults")

    def rate(self, host: Host, rate: str = "100mbit") -> None:
        """Limit what ``host`` sends to ``rate`` with a token bucket (``tbf``)."""
        self._exec(
            host, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf",
            "rate", rate, "burst", "64kb", "latency", "100ms",
        )  # fmt: skip

    def unplug(self, host: Host) -> None:
        """Pull ``host``'s cable: the hub's end of its link goes down."""
        _ip("-n", self.hub, "link", "set", f"p{self.hosts.index(host) + 1}", "down")

    def plug(self, host: Host) -> None:
        """Plug ``host``'s cable back in."""
        _ip("-n", self.hub, "link", "set", f"p{self.hosts.index(host) + 1}", "up")

    def teardown(self) -> None:
        """Delete every namespace made (their links go with them); never raises."""
        while self._namespaces:
            namespace = self._namespaces.pop()
            subprocess.run(
                ["ip", "netns", "delete", namespace], capture_output=True, timeout=30, check=False
            )
        self.hosts.clear()
