"""Coverage-guided fuzzing of the decoders with atheris (libFuzzer for Python).

    python fuzz/run.py --target all --seconds 3     # every target, 3 s each
    python fuzz/run.py --target udx --seconds 60    # one target
    python fuzz/run.py --target frame --runs 100000
    python fuzz/run.py --list

Each target runs in its own process (libFuzzer exits the process when done), starts from
the seeds of ``fuzz/seeds.py`` plus ``--corpus DIR`` if given, and prints one JSON line:
``{"target", "runs", "seconds", "crashes", "exit"}``. A crash (any exception that is not the
library's typed error) is written under ``fuzz/crashes/`` and makes the exit status 1; save
the input under ``fuzz/regressions/NAME/`` once fixed, so the test suite replays it.

Needs ``pip install -e '.[fuzz]'`` (atheris).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CRASHES = HERE / "crashes"
NAMES = (
    "frame",
    "hello",
    "handshake",
    "secret_stream",
    "own_dht",
    "dht_rpc",
    "hyperdht_value",
    "compact",
    "udx",
)


def fuzz_in_this_process(name: str, seconds: float | None, runs: int | None, corpus: str) -> None:
    """Run one target under atheris; never returns (libFuzzer exits)."""
    import atheris

    sys.path.insert(0, str(ROOT))
    with atheris.instrument_imports(include=["p2pswarm", "fuzz"]):
        from fuzz.seeds import seeds
        from fuzz.targets import TARGETS
        from p2pswarm.errors import P2PSwarmError

    target = TARGETS[name]
    for index, seed in enumerate(seeds(name)):
        (Path(corpus) / f"seed-{index}").write_bytes(seed)

    def one_input(data: bytes) -> None:
        with contextlib.suppress(P2PSwarmError):
            target(data)

    CRASHES.mkdir(exist_ok=True)
    argv = [
        sys.argv[0],
        corpus,
        f"-artifact_prefix={CRASHES}/{name}-",
        "-print_final_stats=1",
        "-timeout=10",
        "-rss_limit_mb=2048",
        "-max_len=4096",
    ]
    if seconds is not None:
        argv.append(f"-max_total_time={max(1, round(seconds))}")
    if runs is not None:
        argv.append(f"-runs={runs}")
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


def run_child(name: str, args: argparse.Namespace) -> dict[str, object]:
    """Fuzz ``name`` in a child process; its libFuzzer stats as one dict."""
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as scratch:
        corpus = (args.corpus and str(Path(args.corpus) / name)) or scratch
        Path(corpus).mkdir(parents=True, exist_ok=True)
        command = [sys.executable, __file__, "--child", "--target", name, "--corpus", corpus]
        if args.seconds is not None:
            command += ["--seconds", str(args.seconds)]
        if args.runs is not None:
            command += ["--runs", str(args.runs)]
        before = set(CRASHES.glob(f"{name}-*")) if CRASHES.exists() else set()
        started = time.monotonic()
        bound = (args.seconds or 600) * 4 + 60
        done = subprocess.run(command, capture_output=True, text=True, timeout=bound, check=False)
        elapsed = time.monotonic() - started
        after = set(CRASHES.glob(f"{name}-*")) if CRASHES.exists() else set()
    found = re.search(r"stat::number_of_executed_units:\s*(\d+)", done.stderr)
    if found is None:
        found = re.search(r"Done (\d+) runs", done.stderr)
    new = sorted(str(p.relative_to(ROOT)) for p in after - before)
    result: dict[str, object] = {
        "target": name,
        "runs": int(found.group(1)) if found else None,
        "seconds": round(elapsed, 1),
        "crashes": len(new),
        "exit": done.returncode,
    }
    if new:
        result["artifacts"] = new
    if done.returncode != 0:
        result["tail"] = done.stderr.strip().splitlines()[-15:]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="all", help="a target name, or all")
    parser.add_argument("--seconds", type=float, help="time per target")
    parser.add_argument("--runs", "-runs", type=int, help="inputs per target")
    parser.add_argument("--corpus", help="keep each target's corpus under DIR/NAME")
    parser.add_argument("--list", action="store_true", help="print the target names")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.list:
        print("\n".join(NAMES))
        return 0
    if args.seconds is None and args.runs is None:
        args.seconds = 3.0
    if args.child:
        fuzz_in_this_process(args.target, args.seconds, args.runs, args.corpus)
        return 0
    names = NAMES if args.target == "all" else (args.target,)
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        parser.error(f"unknown target {unknown[0]!r}; one of: all, {', '.join(NAMES)}")
    failed = False
    total = 0
    for name in names:
        result = run_child(name, args)
        print(json.dumps(result), flush=True)
        total += int(result["runs"] or 0)  # type: ignore[call-overload]
        failed = failed or result["exit"] != 0 or bool(result["crashes"])
    if len(names) > 1:
        print(json.dumps({"target": "all", "runs": total, "failed": failed}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
