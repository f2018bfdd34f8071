"""Hostile input figures for the README: one JSON line per flood.

    .venv/bin/python bench/hostile.py            # 100k datagrams, 1000+1000 handshakes
    .venv/bin/python bench/hostile.py --quick    # the default suite's sizes

Datagram floods: inputs sent (every one reached the decoder), wall time, peak Python heap
growth (tracemalloc) and what stayed. Handshake flood: bogus handshakes and half-open
sockets cut per second while honest peers connected. Figures, not assertions: the tests in
tests/hostile/ assert the bounds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hostile.test_datagram_floods import hyperdht_flood, own_wire_flood
from tests.hostile.test_handshake_floods import run_flood


def vm_hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def main(quick: bool) -> None:
    count = 5_000 if quick else 100_000
    for name, run in (("own_wire", own_wire_flood), ("hyperdht", hyperdht_flood)):
        started = time.perf_counter()
        sent, meter, _ = await run(count)
        print(
            json.dumps(
                {
                    "case": f"datagram_flood_{name}",
                    "datagrams": sent,
                    "crashes": 0,
                    "seconds": round(time.perf_counter() - started, 2),
                    "peak_heap_growth_kib": meter.peak_growth // 1024,
                    "kept_kib": meter.kept // 1024,
                    "process_peak_rss_kib": vm_hwm_kib(),
                }
            ),
            flush=True,
        )
    bogus = 200 if quick else 1000
    result = await run_flood(
        bogus=bogus,
        half_opens=bogus // 2 if quick else 1000,
        honest=3 if quick else 5,
        handshake_timeout=1.0 if quick else 2.0,
        parallel=100 if quick else 300,
    )
    cut = result.cut + result.refused_at_connect
    print(
        json.dumps(
            {
                "case": "handshake_flood",
                "bogus": result.bogus,
                "half_open": result.half_open,
                "cut": cut,
                "seconds": round(result.seconds, 2),
                "cut_per_second": round(cut / result.seconds),
                "honest_connected": result.honest_connected,
                "process_peak_rss_kib": vm_hwm_kib(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    anyio.run(main, parser.parse_args().quick)
