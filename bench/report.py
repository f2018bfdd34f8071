"""The summary and the charts of a ``run_all.py`` results folder.

Reads ``OUT/raw.jsonl`` (one wrapped JSON line per run) and ``OUT/env.json``, and writes
``OUT/SUMMARY.md``: one row per headline figure with the median over runs (min .. max) for
the JS anchor, p2pswarm and, where measured, the JS secret-stream over TCP, and the ratio
p2pswarm / JS of the medians with which way is better; the load average of the runs; then
the full per-benchmark tables of ``summarize_swarm.py``. With matplotlib (the ``bench``
extra) it also draws ``OUT/charts/{throughput,rtt,connect,mesh,growth,dht}.png``.

    python bench/report.py bench/results/<folder> [--no-charts]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from summarize_swarm import get, main as swarm_tables

Runs = dict[tuple[str, str], list[dict[str, Any]]]  # (bench, impl) -> results

# label, bench, dotted key, unit, "lower" or "higher" is better
ROWS: list[tuple[str, str, str, str, str]] = [
    ("bulk, one process", "throughput-single", "mb_per_s", "MB/s", "higher"),
    ("bulk, two processes", "throughput-split", "mb_per_s", "MB/s", "higher"),
    ("64-B round trip, one process", "throughput-single", "rtt_us.median", "µs", "lower"),
    ("64-B round trip, two processes", "throughput-split", "rtt_us.median", "µs", "lower"),
    ("connect: B join -> first connection on B", "connect", "b_conn_ms.median", "ms", "lower"),
    ("connect: B join -> first connection on A", "connect", "a_conn_ms.median", "ms", "lower"),
    ("connect: A join -> flushed()", "connect", "a_flush_ms.median", "ms", "lower"),
    ("connect: B join -> flushed()", "connect", "b_flush_ms.median", "ms", "lower"),
    ("DHT (10 nodes): announce", "dht-n10", "announce_ms.median", "ms", "lower"),
    ("DHT (10 nodes): lookup", "dht-n10", "lookup_ms.median", "ms", "lower"),
    (
        "reconnect after a drop (topic, client closes)",
        "reconnect-topic",
        "results.client_drop1.b_reconnect_ms.median",
        "ms",
        "lower",
    ),
]
SCALE_ROWS: list[tuple[str, str, str, str]] = [
    ("full mesh (last link change)", "last_change_ms", "ms", "lower"),
    ("CPU per link", "cpu.ms_per_link", "ms", "lower"),
    ("RSS per swarm", "rss_mib.per_swarm_after_mesh", "MiB", "lower"),
]
IMPLS = (("js", "JS Hyperswarm"), ("py", "p2pswarm"), ("jstcp", "JS secret-stream, TCP"))


def read(folder: Path) -> tuple[Runs, list[dict[str, Any]], dict[str, Any]]:
    runs: Runs = defaultdict(list)
    lines = []
    raw = folder / "raw.jsonl"
    for text in raw.read_text().splitlines() if raw.exists() else []:
        if not text.strip():
            continue
        line = json.loads(text)
        lines.append(line)
        if line.get("result") is not None:
            runs[line["bench"], line["impl"]].append(line["result"])
    env_path = folder / "env.json"
    env = json.loads(env_path.read_text()) if env_path.exists() else {}
    return runs, lines, env


def values(runs: Runs, bench: str, impl: str, key: str) -> list[float]:
    return [v for v in (get(r, key) for r in runs.get((bench, impl), [])) if v is not None]


def fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def cell(vals: list[float], unit: str) -> str:
    if not vals:
        return "-"
    text = f"{fmt(statistics.median(vals))} {unit}"
    if len(vals) > 1:
        text += f" ({fmt(min(vals))}..{fmt(max(vals))})"
    return text


def ratio(py: list[float], js: list[float], better: str) -> str:
    if not py or not js:
        return "-"
    p, j = statistics.median(py), statistics.median(js)
    if p == 0 or j == 0:
        return "-"
    r = p / j
    ahead = (r < 1) if better == "lower" else (r > 1)
    word = "p2pswarm ahead" if ahead else "JS ahead" if r != 1 else "even"
    return f"{r:.2f} ({word})"


def headline(runs: Runs) -> list[str]:
    rows: list[tuple[str, str, str, str, str]] = list(ROWS)
    scale_benches = sorted(
        {b for b, _ in runs if b.startswith("scale-")},
        key=lambda b: (int(re.findall(r"n(\d+)", b)[0]), b),
    )
    for bench in scale_benches:
        n, join = bench.split("-")[1][1:], bench.split("-", 2)[2]
        for label, key, unit, better in SCALE_ROWS:
            rows.append((f"scale N={n} {join}: {label}", bench, key, unit, better))
    for bench in sorted({b for b, _ in runs if b.startswith("dht-n") and b != "dht-n10"}):
        nodes = bench[len("dht-n") :]
        rows.append((f"DHT ({nodes} nodes): lookup", bench, "lookup_ms.median", "ms", "lower"))
    has_tcp = any(impl == "jstcp" for _, impl in runs)
    head = "| | JS Hyperswarm | p2pswarm | ratio p2pswarm / JS | better |"
    sep = "|---|---|---|---|---|"
    if has_tcp:
        head += " JS secret-stream over TCP |"
        sep += "---|"
    out = [head, sep]
    for label, bench, key, unit, better in rows:
        js, py = values(runs, bench, "js", key), values(runs, bench, "py", key)
        if not js and not py:
            continue
        row = f"| {label} | {cell(js, unit)} | {cell(py, unit)} | {ratio(py, js, better)} |"
        row += f" {better} |"
        if has_tcp:
            row += f" {cell(values(runs, bench, 'jstcp', key), unit)} |"
        out.append(row)
    return out


def load_line(lines: list[dict[str, Any]], env: dict[str, Any]) -> str:
    ones = [ln["load_before"][0] for ln in lines if ln.get("load_before")]
    ones += [ln["load_after"][0] for ln in lines if ln.get("load_after")]
    if not ones:
        return "load: unknown"
    return (
        f"1-minute load average over the runs: median {statistics.median(ones):.2f}, "
        f"range {min(ones):.2f}..{max(ones):.2f} (`os.getloadavg()` before and after each run; "
        f"{env.get('cpu', '?')})"
    )


def summary_md(folder: Path) -> str:
    runs, lines, env = read(folder)
    failed = [ln for ln in lines if ln.get("result") is None]
    parts = [
        f"# Benchmarks next to JS Hyperswarm, {env.get('date', '?')} .. {env.get('date_end', '?')}",
        "",
        f"p2pswarm {env.get('p2pswarm_commit', '?')} ({env.get('backend', 'asyncio')}), "
        f"{env.get('python', '')}, node {env.get('node', '')}; mode {env.get('mode', '?')}, "
        f"{env.get('runs', '?')} interleaved rounds (JS, p2pswarm, JS over TCP per benchmark). "
        "Cells: median over runs (min..max); ratio of the medians.",
        "",
        load_line(lines, env),
        "",
        *headline(runs),
        "",
    ]
    if failed:
        parts.append("Failed runs:")
        parts += [
            f"- {ln['bench']} {ln['impl']} round {ln['round']}: {ln['error']}" for ln in failed
        ]
        parts.append("")
    charts = sorted((folder / "charts").glob("*.png")) if (folder / "charts").is_dir() else []
    if charts:
        parts += [f"![{c.stem}](charts/{c.name})" for c in charts] + [""]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        swarm_tables_for(folder)
    parts += ["## Per benchmark", buffer.getvalue()]
    return "\n".join(parts)


def swarm_tables_for(folder: Path) -> None:
    import sys

    saved = sys.argv
    sys.argv = ["summarize_swarm.py", str(folder)]
    try:
        swarm_tables()
    finally:
        sys.argv = saved


def charts(folder: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no charts")
        return []
    runs, _, _ = read(folder)
    target = folder / "charts"
    target.mkdir(exist_ok=True)
    colors = {"js": "#e8a33d", "py": "#3d7be8", "jstcp": "#b0b0b0"}
    names = dict(IMPLS)
    written: list[Path] = []

    def bars(name: str, title: str, unit: str, groups: list[tuple[str, str, str]]) -> None:
        """groups: (label, bench, key); one bar per implementation, whisker min..max."""
        impls = [i for i, _ in IMPLS if any(values(runs, b, i, k) for _, b, k in groups)]
        groups = [g for g in groups if any(values(runs, g[1], i, g[2]) for i in impls)]
        if not groups or not impls:
            return
        fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(groups) + 2), 3.6))
        width = 0.8 / len(impls)
        for j, impl in enumerate(impls):
            med, lo, hi, xs = [], [], [], []
            for g, (_, bench, key) in enumerate(groups):
                vals = values(runs, bench, impl, key)
                if not vals:
                    continue
                m = statistics.median(vals)
                xs.append(g + (j - (len(impls) - 1) / 2) * width)
                med.append(m)
                lo.append(m - min(vals))
                hi.append(max(vals) - m)
            ax.bar(xs, med, width, yerr=[lo, hi], capsize=3, label=names[impl], color=colors[impl])
        ax.set_xticks(range(len(groups)), [g[0] for g in groups])
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = target / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    bars(
        "throughput",
        "Bulk transfer, 64 KiB writes (higher is better)",
        "MB/s",
        [
            ("one process", "throughput-single", "mb_per_s"),
            ("two processes", "throughput-split", "mb_per_s"),
        ],
    )
    bars(
        "rtt",
        "64-byte round trip, median (lower is better)",
        "µs",
        [
            ("one process", "throughput-single", "rtt_us.median"),
            ("two processes", "throughput-split", "rtt_us.median"),
        ],
    )
    bars(
        "connect",
        "Connect on a 10-node testnet, median (lower is better)",
        "ms",
        [
            ("B join ->\nconn on B", "connect", "b_conn_ms.median"),
            ("B join ->\nconn on A", "connect", "a_conn_ms.median"),
            ("A join ->\nflushed", "connect", "a_flush_ms.median"),
            ("B join ->\nflushed", "connect", "b_flush_ms.median"),
        ],
    )
    scale = sorted(
        {b for b, _ in runs if b.startswith("scale-")},
        key=lambda b: (int(re.findall(r"n(\d+)", b)[0]), b),
    )
    mesh_groups = [(b[len("scale-") :].replace("-", "\n"), b, "last_change_ms") for b in scale]
    bars("mesh", "Time to full mesh, one process (lower is better)", "ms", mesh_groups)
    # growth: sequential mesh over N, three panels
    seq = [b for b in scale if b.endswith("-sequential")]
    if len(seq) >= 3:
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
        for ax, (title, key, unit) in zip(
            axes,
            [
                ("full mesh (sequential joins)", "last_change_ms", "ms"),
                ("CPU per link", "cpu.ms_per_link", "ms"),
                ("RSS per swarm", "rss_mib.per_swarm_after_mesh", "MiB"),
            ],
            strict=True,
        ):
            for impl in ("js", "py"):
                pts = [
                    (int(re.findall(r"n(\d+)", b)[0]), statistics.median(v))
                    for b in seq
                    if (v := values(runs, b, impl, key))
                ]
                if pts:
                    ax.plot(
                        *zip(*pts, strict=True), marker="o", label=names[impl], color=colors[impl]
                    )
            ax.set_xlabel("swarms (N)")
            ax.set_ylabel(unit)
            ax.set_title(title)
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = target / "growth.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    dht = sorted(
        {b for b, _ in runs if b.startswith("dht-n")}, key=lambda b: int(b[len("dht-n") :])
    )
    bars(
        "dht",
        "DHT on a local testnet, median (lower is better)",
        "ms",
        [
            (f"{b[len('dht-n') :]} nodes\n{what}", b, f"{what}_ms.median")
            for b in dht
            for what in ("announce", "lookup")
        ],
    )
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--no-charts", action="store_true")
    args = parser.parse_args()
    if not args.no_charts:
        for path in charts(args.folder):
            print(f"chart: {path}")
    text = summary_md(args.folder)
    (args.folder / "SUMMARY.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
