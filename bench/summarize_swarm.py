"""Side-by-side table of a swarm results folder: ours next to the JS anchor's, per metric.

Reads ``<bench>-js.jsonl`` and ``<bench>-py.jsonl`` (one JSON line per run, as written by
``run_all.sh``) and prints Markdown: for each metric the median over runs of the per-run
value, with the min..max over runs, for JS and for us. ``node aggregate.js <dir>`` prints
every field; this prints the ones the targets are stated in.

    python bench/summarize_swarm.py bench/results/<dir>
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

Row = dict[str, Any]

METRICS: dict[str, list[tuple[str, str]]] = {
    "connect": [
        ("b_conn_ms.median", "B join -> first connection on B (ms)"),
        ("b_conn_ms.p90", "  same, p90 (ms)"),
        ("a_conn_ms.median", "B join -> first connection on A (ms)"),
        ("a_flush_ms.median", "A join -> flushed, incl. first listen (ms)"),
        ("b_flush_ms.median", "B join -> flushed (lookup done) (ms)"),
        ("bootstrap_ms.median", "2 swarms started and bootstrapped (ms)"),
        ("teardown_ms.median", "2 swarms closed (ms)"),
        ("ext_tx_packets_delta", "packets sent off loopback"),
    ],
    "scale": [
        ("full_mesh_ms", "time to full mesh (ms)"),
        ("t90_ms", "t90 (ms)"),
        ("t99_ms", "t99 (ms)"),
        ("last_change_ms", "last link change (ms)"),
        ("connections.links_settled", "links settled"),
        ("connections.client_attempted", "client dials"),
        ("rss_mib.settled", "RSS settled, process (MiB)"),
        ("rss_mib.per_swarm_after_mesh", "RSS per swarm (MiB)"),
        ("cpu.ms_per_link", "CPU per link (ms)"),
        ("cpu.busy_fraction_to_last_change", "cores busy while meshing"),
        ("ext_tx_packets_delta", "packets sent off loopback"),
    ],
    "reconnect": [
        ("results.client_drop1.detect_ms.median", "client closes: other side sees it (ms)"),
        ("results.client_drop1.b_reconnect_ms.median", "client closes: B reconnected (ms)"),
        ("results.client_drop1.a_reconnect_ms.median", "client closes: A reconnected (ms)"),
        ("results.server_drop1.detect_ms.median", "server closes: other side sees it (ms)"),
        ("results.server_drop1.b_reconnect_ms.median", "server closes: B reconnected (ms)"),
        ("results.server_drop1.a_reconnect_ms.median", "server closes: A reconnected (ms)"),
        ("results.client_drop2.b_reconnect_ms.median", "2nd drop: B reconnected (ms)"),
        ("results.client_drop3.b_reconnect_ms.median", "3rd drop: B reconnected (ms)"),
        ("errors", "failed iterations"),
        ("ext_tx_packets_delta", "packets sent off loopback"),
    ],
    "dead-peer": [
        ("detect_ms.median", "reader sees the end (ms)"),
        ("detect_ms.max", "  slowest (ms)"),
        ("closed_ms.median", "swarm drops the connection (ms)"),
        ("within_timeout", "detections within idle_timeout"),
        ("undetected", "never detected"),
        ("ext_tx_packets_delta", "packets sent off loopback"),
    ],
}


def load(path: Path) -> list[Row]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def get(row: Row, dotted: str) -> float | None:
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def cell(rows: list[Row], dotted: str) -> str:
    values = [v for v in (get(r, dotted) for r in rows) if v is not None]
    if not rows:
        return ""
    if not values:
        return f"none of {len(rows)}"
    med = statistics.median(values)
    digits = 0 if abs(med) >= 100 else 1 if abs(med) >= 10 else 2
    text = f"{med:.{digits}f}"
    if len(values) > 1:
        text += f" ({min(values):.{digits}f} .. {max(values):.{digits}f})"
    if len(values) < len(rows):
        text += f" [{len(values)} of {len(rows)} runs]"
    return text


def main() -> None:
    folder = Path(sys.argv[1])
    names = sorted({p.stem.rsplit("-", 1)[0] for p in folder.glob("*-*.jsonl")})
    for name in names:
        js, py = load(folder / f"{name}-js.jsonl"), load(folder / f"{name}-py.jsonl")
        kind = next((k for k in METRICS if name.startswith(k)), None)
        if kind is None:
            continue
        params = (py or js)[0].get("params", {})
        print(f"\n### {name} (JS {len(js)} runs, p2pswarm {len(py)} runs) {json.dumps(params)}\n")
        print("| metric | JS Hyperswarm | p2pswarm |")
        print("|---|---|---|")
        for dotted, label in METRICS[kind]:
            js_cell, py_cell = cell(js, dotted), cell(py, dotted)
            if js_cell.startswith("none") and py_cell.startswith("none"):
                continue
            print(f"| {label} | {js_cell or '-'} | {py_cell or '-'} |")
        if kind == "scale":
            for label, rows in (("JS", js), ("p2pswarm", py)):
                reasons = [str(r.get("stop_reason")) for r in rows]
                if reasons:
                    print(f"\n{label} stop reasons: {', '.join(reasons)}")


if __name__ == "__main__":
    main()
