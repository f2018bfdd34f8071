"""Helpers shared by the benchmarks: the JS anchor's statistics and accounting, in Python.

Every benchmark prints one JSON line with the same keys as the JS Hyperswarm anchor
(``shared/anchors/js-hyperswarm``), so ``node aggregate.js <dir>`` tabulates both.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


def now_ms() -> float:
    """A monotonic clock in milliseconds (float), like the anchor's ``now()``."""
    return time.perf_counter() * 1000.0


def quantile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated quantile, the anchor's definition."""
    data = sorted(v for v in values if isinstance(v, int | float) and math.isfinite(v))
    if not data:
        return None
    pos = (len(data) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary(values: Sequence[float], digits: int = 2) -> dict[str, Any]:
    """``{n, median, p90, min, max, mean}`` rounded, the anchor's ``summary()``."""
    data = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, digits)

    return {
        "n": len(data),
        "median": r(quantile(data, 0.5)),
        "p90": r(quantile(data, 0.9)),
        "min": r(min(data) if data else None),
        "max": r(max(data) if data else None),
        "mean": r(sum(data) / len(data) if data else None),
    }


def ext_tx_packets() -> int | None:
    """Packets sent on every non-loopback interface: the tripwire that nothing left the box."""
    total = 0
    base = Path("/sys/class/net")
    try:
        interfaces = list(base.iterdir())
    except OSError:
        return None
    for interface in interfaces:
        if interface.name == "lo":
            continue
        try:
            total += int((interface / "statistics" / "tx_packets").read_text())
        except (OSError, ValueError):
            continue
    return total


def rss_mib(collect: bool = False) -> float:
    """Resident set size in MiB (VmRSS), optionally after a forced garbage collection."""
    if collect:
        gc.collect()
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_ms() -> float:
    """Whole-process CPU time (user + sys) in milliseconds: ``process.cpuUsage()``."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000.0


def versions() -> dict[str, str | None]:
    """The versions that decide the figures, for the JSON line."""

    def v(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "python": platform.python_version(),
        "p2pswarm": v("p2pswarm"),
        "anyio": v("anyio"),
        "pynacl": v("pynacl"),
        "cryptography": v("cryptography"),
        "noiseprotocol": v("noiseprotocol"),
        "backend": os.environ.get("P2PSWARM_BENCH_BACKEND", "asyncio"),
    }


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=("asyncio", "trio"),
        default="asyncio",
        help="anyio backend to run on (default asyncio, as the anchor's one event loop)",
    )


def emit(result: dict[str, Any]) -> None:
    """Print the one JSON line of a run."""
    import json

    sys.stdout.write(json.dumps(result, separators=(",", ":")) + "\n")
    sys.stdout.flush()
