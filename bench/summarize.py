"""Median-of-runs table of a throughput results folder, next to the JS anchor's rows.

Reads every ``*.jsonl`` in the folder (one JSON line per run, as written by
``run_throughput.sh``) and prints a Markdown table: per file, the median and min..max of
bulk MB/s, RTT median/p90/p99, CPU per MiB and handshakes per second, then the ratios the
project's targets are stated in (ours against the anchor of the same folder).

    python bench/summarize.py bench/results/<dir>
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def runs(path: Path) -> list[Row]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def spread(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    return f"{med:.{digits}f} ({min(values):.{digits}f} .. {max(values):.{digits}f})"


def cpu_per_mib(row: Row) -> float:
    """Receiver-side CPU per MiB; in single mode the process runs both ends."""
    mib = row["params"]["mib"]
    return float(row["b_cpu_ms_during_bulk"]) / mib


def column(rows: list[Row], get: Callable[[Row], Any]) -> list[float]:
    out = []
    for row in rows:
        try:
            value = get(row)
        except (KeyError, TypeError):
            continue
        if isinstance(value, int | float):
            out.append(float(value))
    return out


def median_of(rows: list[Row], get: Callable[[Row], Any]) -> float | None:
    values = column(rows, get)
    return statistics.median(values) if values else None


def main() -> None:
    folder = Path(sys.argv[1])
    table = {path.stem: runs(path) for path in sorted(folder.glob("*.jsonl"))}
    print(
        "| run | n | MB/s | RTT median µs | RTT p90 µs | RTT p99 µs | B CPU ms/MiB | handshakes/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, rows in table.items():
        print(
            f"| {name} | {len(rows)} "
            f"| {spread(column(rows, lambda r: r['mb_per_s']))} "
            f"| {spread(column(rows, lambda r: r['rtt_us']['median']))} "
            f"| {spread(column(rows, lambda r: r['rtt_us']['p90']))} "
            f"| {spread(column(rows, lambda r: r['rtt_us']['p99']), 0)} "
            f"| {spread(column(rows, cpu_per_mib), 2)} "
            f"| {spread(column(rows, lambda r: r['handshakes_per_s']), 0)} |"
        )
    print()
    print("| ours / anchor (medians) | bulk MB/s ratio | RTT median ratio (lower is better) |")
    print("|---|---|---|")
    for mode in ("single", "split"):
        anchor = table.get(f"js-anchor-{mode}")
        if not anchor:
            continue
        base_mb = median_of(anchor, lambda r: r["mb_per_s"])
        base_rtt = median_of(anchor, lambda r: r["rtt_us"]["median"])
        for name, rows in table.items():
            if not name.startswith(f"py-{mode}") or base_mb is None or base_rtt is None:
                continue
            mb = median_of(rows, lambda r: r["mb_per_s"])
            rtt = median_of(rows, lambda r: r["rtt_us"]["median"])
            if mb is not None and rtt is not None:
                ratios = f"{mb / base_mb:.2f}x | {rtt / base_rtt:.2f}x"
                print(f"| {name} vs js-anchor-{mode} | {ratios} |")


if __name__ == "__main__":
    main()
