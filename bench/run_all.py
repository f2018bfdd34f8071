"""Every benchmark, interleaved with the JS Hyperswarm anchor, then a summary and charts.

In each of ``--runs`` rounds every benchmark runs once per implementation, one after
another (JS, then p2pswarm, then the JS secret-stream over TCP where there is one; never in
parallel: the machine has two cores). Each run's JSON line goes to ``OUT/raw.jsonl``
wrapped with the benchmark, the implementation, the round and the load average before and
after it, and to ``OUT/<bench>-<impl>.jsonl`` (the anchor's ``aggregate.js`` and
``summarize_swarm.py`` read those). ``OUT/env.json`` records versions, commit and load;
then ``report.py`` writes ``OUT/SUMMARY.md`` (each row with its ratio to JS) and
``OUT/charts/*.png`` (with the ``bench`` extra installed: matplotlib).

    ANCHOR=/tmp/js-anchor .venv/bin/python bench/run_all.py            # the full set, 3 rounds
    ANCHOR=/tmp/js-anchor .venv/bin/python bench/run_all.py --quick    # about a minute
    ANCHOR=/tmp/js-anchor .venv/bin/python bench/run_all.py --growth   # + N=10..100, DHT 10..1000
    ANCHOR=/tmp/js-anchor .venv/bin/python bench/run_all.py --extras   # + back-off, dead peers
    .venv/bin/python bench/run_all.py --only scale --runs 5 --out bench/results/mine

The Python side runs from a snapshot of HEAD (``git archive`` of p2pswarm/ and bench/ into a
temporary directory, first on ``PYTHONPATH``) so every round measures one commit while the
tree changes; ``--worktree`` runs the working tree instead. Loopback only: every benchmark
binds 127.0.0.1 and uses a local testnet; each line reports ``ext_tx_packets_delta``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


@dataclass
class Bench:
    """One benchmark: a name, and per implementation the command that prints its line."""

    name: str
    js: list[str] | None  # node arguments, run in the anchor's folder
    py: list[str]  # a script under bench/ and its arguments
    js_tcp: list[str] | None = None  # node arguments for bench/js_tcp_peer.js
    extra_py: dict[str, list[str]] = field(default_factory=dict)  # e.g. trio


def plan(args: argparse.Namespace) -> list[Bench]:
    """The benchmarks of this run, in the order each round runs them."""
    quick = args.quick
    out: list[Bench] = []
    mib, pings, warm, hs = (32, 300, 50, 50) if quick else (256, 1000, 100, 300)
    common = [f"--mib={mib}", "--chunk-kib=64", f"--pings={pings}", f"--ping-warmup={warm}"]
    common.append("--ping-size=64")
    out += [
        Bench(
            f"throughput-{mode}",
            js=["throughput.js", f"--mode={mode}", *common],
            py=["throughput.py", f"--mode={mode}", *common, f"--handshakes={hs}"],
            js_tcp=[str(BENCH / "js_tcp_peer.js"), f"--mode={mode}", *common],
        )
        for mode in ("single", "split")
    ]
    iterations = 5 if quick else 20
    out.append(
        Bench(
            "connect",
            js=["connect.js", f"--iterations={iterations}", "--warmup=1", "--nodes=10"],
            py=["connect.py", f"--iterations={iterations}", "--warmup=1", "--nodes=10"],
        )
    )
    settle = "--settle=1000" if quick else "--settle=3000"
    sizes = [10] if quick else [20, 50]
    if args.growth:
        sizes = sorted({*sizes, 10, 20, 50, 100})
    for n in sizes:
        joins = ["sequential", "refresh"] if n <= 50 else ["sequential"]
        out += [
            Bench(
                f"scale-n{n}-{join}",
                js=["--expose-gc", "scale.js", f"--n={n}", f"--join={join}", settle],
                py=["scale.py", f"--n={n}", f"--join={join}", settle],
            )
            for join in joins
        ]
    if not quick:
        sim = ["--n=20", "--join=simultaneous", "--stable-ms=15000", settle]
        out.append(
            Bench(
                "scale-n20-simultaneous",
                js=["--expose-gc", "scale.js", *sim],
                py=["scale.py", *sim],
            )
        )
    dht_iter = 10 if quick else 30
    dht_sizes = [10, 100, 1000] if args.growth else [10]
    for nodes in dht_sizes:
        it = dht_iter if nodes <= 100 else 10
        out.append(
            Bench(
                f"dht-n{nodes}",
                js=[
                    str(BENCH / "js_dht.js"),
                    f"--nodes={nodes}",
                    f"--iterations={it}",
                    "--warmup=2",
                ],
                py=[
                    "dht.py",
                    f"--nodes={nodes}",
                    f"--iterations={it}",
                    "--warmup=2",
                    "--scale-nodes=0",
                ],
            )
        )
    if not quick:
        out.append(
            Bench(
                "reconnect-topic",
                js=["reconnect.js", "--iterations=5", "--side=both", "--via=topic"],
                py=["reconnect.py", "--iterations=5", "--side=both", "--via=topic"],
            )
        )
    if args.extras:
        drops = ["--iterations=2", "--side=client", "--drops=3"]
        out.append(
            Bench("reconnect-3drops", js=["reconnect.js", *drops], py=["reconnect.py", *drops])
        )
        for signal in ("stop", "kill"):
            dead = ["--iterations=3", f"--signal={signal}"]
            out.append(
                Bench(
                    f"dead-peer-{signal}",
                    js=[str(BENCH / "js_dead_peer.js"), *dead],
                    py=["dead_peer.py", *dead],
                )
            )
    if args.only:
        out = [b for b in out if any(b.name.startswith(prefix) for prefix in args.only)]
    return out


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def snapshot(dest: Path) -> str:
    """p2pswarm/ and bench/ of HEAD exported to ``dest``; returns the short commit."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD", "p2pswarm", "bench"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    tar_path = dest / "src.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(dest, filter="data")
    tar_path.unlink()
    return commit


def run_one(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> tuple[dict[str, Any] | None, str]:
    """Runs one benchmark process; returns its (last) JSON line, or None and the error."""
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return None, f"exit {proc.returncode}: {proc.stderr.strip()[-800:]}"
    return json.loads(lines[-1]), ""


def env_record(args: argparse.Namespace, commit: str, py: str, anchor: Path) -> dict[str, Any]:
    def out(cmd: list[str], cwd: Path | None = None) -> str:
        try:
            return subprocess.run(
                cmd, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": "quick" if args.quick else "full",
        "growth": args.growth,
        "runs": args.runs,
        "backend": args.backend,
        "p2pswarm_commit": commit,
        "python": out([py, "--version"]),
        "node": out(["node", "--version"]),
        "anchor_npm_ls": out(["npm", "ls", "hyperswarm", "hyperdht"], cwd=anchor),
        "kernel": f"{platform.system()} {platform.release()}",
        "cpu": f"{cpu} x {os.cpu_count()}",
        "load_before": load(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=None, help="rounds (3; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="small parameters, about a minute")
    parser.add_argument(
        "--growth", action="store_true", help="add N=10,20,50,100 and DHT testnets of 10..1000"
    )
    parser.add_argument(
        "--extras", action="store_true", help="add 3 drops in a row and dead-peer detection (slow)"
    )
    parser.add_argument("--only", action="append", default=[], help="benchmark name prefix")
    parser.add_argument("--no-js", action="store_true", help="only p2pswarm (no anchor runs)")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--anchor", default=os.environ.get("ANCHOR", "/tmp/js-anchor"))
    parser.add_argument("--out", default=None, help="results folder (appends)")
    parser.add_argument("--python", default=os.environ.get("PY", str(ROOT / ".venv/bin/python")))
    parser.add_argument("--worktree", action="store_true", help="measure the working tree")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    parser.add_argument("--no-charts", action="store_true")
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    anchor = Path(args.anchor).resolve()
    use_js = not args.no_js
    if use_js and not (anchor / "node_modules" / "hyperswarm").is_dir():
        print(
            f"no JS anchor with node_modules at {anchor} (set ANCHOR, or --no-js)", file=sys.stderr
        )
        return 2
    stamp = time.strftime("%Y-%m-%dT%H%M", time.gmtime())
    out = Path(
        args.out or ROOT / "bench" / "results" / f"{stamp}-{'quick' if args.quick else 'all'}"
    )
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="p2pswarm-bench-"))
    try:
        if args.worktree:
            src, commit = ROOT, "worktree"
        else:
            src, commit = tmp, snapshot(tmp)
        env = dict(os.environ)
        env["PYTHONPATH"] = str(src) + (
            os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
        )
        env["ANCHOR"] = str(anchor)
        record = env_record(args, commit, args.python, anchor)
        print(json.dumps(record), file=sys.stderr)
        benches = plan(args)
        raw = (out / "raw.jsonl").open("a")
        rounds_load: list[dict[str, Any]] = []
        for round_no in range(1, args.runs + 1):
            rounds_load.append({"round": round_no, "load": load(), "at": time.strftime("%H:%M:%S")})
            print(f"== round {round_no}/{args.runs} load {load()}", file=sys.stderr)
            for bench in benches:
                jobs: list[tuple[str, list[str], Path]] = []
                if use_js and bench.js is not None:
                    jobs.append(("js", ["node", *bench.js], anchor))
                py_cmd = [args.python, str(src / "bench" / bench.py[0]), *bench.py[1:]]
                jobs.append(("py", [*py_cmd, f"--backend={args.backend}"], ROOT))
                if use_js and bench.js_tcp is not None:
                    jobs.append(("jstcp", ["node", *bench.js_tcp], ROOT))
                for impl, cmd, cwd in jobs:
                    before, t = load(), time.monotonic()
                    print(f">> {bench.name} {impl}: {' '.join(cmd[1:])}", file=sys.stderr)
                    result, error = run_one(cmd, cwd, env, args.timeout)
                    wall = round(time.monotonic() - t, 2)
                    line = {
                        "bench": bench.name,
                        "impl": impl,
                        "round": round_no,
                        "load_before": before,
                        "load_after": load(),
                        "wall_s": wall,
                        "result": result,
                        "error": error or None,
                    }
                    raw.write(json.dumps(line, separators=(",", ":")) + "\n")
                    raw.flush()
                    if result is not None:
                        with (out / f"{bench.name}-{impl}.jsonl").open("a") as f:
                            f.write(json.dumps(result, separators=(",", ":")) + "\n")
                    else:
                        print(f"   FAILED: {error}", file=sys.stderr)
        raw.close()
        record["rounds"] = rounds_load
        record["load_after"] = load()
        record["date_end"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        (out / "env.json").write_text(json.dumps(record, indent=1) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = [args.python, str(BENCH / "report.py"), str(out)]
    if args.no_charts:
        report.append("--no-charts")
    subprocess.run(report, check=False)
    print(f"results: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
