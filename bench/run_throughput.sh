#!/usr/bin/env bash
# Interleaved throughput runs: the JS Hyperswarm anchor, p2pswarm, the JS secret-stream over
# TCP, and the mixed pairs, one after another (never in parallel: the box has 2 cores),
# RUNS rounds (default 3). One JSON line per run is appended to $OUT/<name>.jsonl; $OUT/env.txt
# records the machine, the versions and the load before and after.
#
#   ANCHOR=/tmp/js-anchor bench/run_throughput.sh        # the anchor dir, after `npm ci` there
#   RUNS=5 MIB=256 OUT=bench/results/mine bench/run_throughput.sh
#
# Needs: the project's venv (.venv), node, `npm ci` in tests/interop (for js_tcp_peer.js) and
# in the anchor's dir. uvloop runs are added when UVLOOP_PATH points at a directory holding
# uvloop (it is not a project dependency), e.g. `pip install --target /tmp/uvloop uvloop`.
# The tree is shared with colleagues editing it: to measure one fixed commit, run this script
# from an exported copy (git archive HEAD | tar -x -C DIR), with PYTHONPATH=DIR, PY pointing
# at the venv's python, and DIR/tests/interop/node_modules linked to the installed one.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-3}"
MIB="${MIB:-256}"
ANCHOR="${ANCHOR:-../shared/anchors/js-hyperswarm}"
OUT="${OUT:-bench/results/$(date -u +%Y-%m-%d)-throughput}"
PY="${PY:-.venv/bin/python}"
mkdir -p "$OUT"
COMMON=(--mib="$MIB" --chunk-kib=64 --pings=1000 --ping-warmup=100 --ping-size=64)

load() { echo "$(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min); processes running: $(grep procs_running /proc/stat | cut -d' ' -f2)"; }
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "node: $(node --version)"
  echo "python: $($PY --version 2>&1)"
  echo "anchor npm ls:"; (cd "$ANCHOR" && npm ls hyperswarm hyperdht 2>/dev/null) || true
  echo "@hyperswarm/secret-stream (tests/interop): $(node -p "require('./tests/interop/node_modules/@hyperswarm/secret-stream/package.json').version" 2>/dev/null || echo missing)"
  echo "python packages: $($PY -m pip list 2>/dev/null | grep -iE '^(anyio|cryptography|pynacl|noiseprotocol|trio) ' | tr -s ' ' | paste -sd, -)"
  echo "p2pswarm commit: $(git rev-parse --short HEAD 2>/dev/null || echo "${P2PSWARM_COMMIT:-unknown}")"
  echo "kernel: $(uname -sr)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "mem: $(free -m | awk '/Mem:/{print $2" MiB"}')"
  echo "load before: $(load)"
} > "$OUT/env.txt"
cat "$OUT/env.txt"

run() { # name, then the command
  local name="$1"; shift
  echo ">> $name: $*" >&2
  "$@" >> "$OUT/$name.jsonl"
}

for i in $(seq 1 "$RUNS"); do
  echo "== round $i/$RUNS ($(load))" >&2
  run js-anchor-single node "$ANCHOR/throughput.js" --mode=single "${COMMON[@]}"
  run py-single "$PY" bench/throughput.py --mode=single "${COMMON[@]}"
  run js-anchor-split node "$ANCHOR/throughput.js" --mode=split "${COMMON[@]}"
  run py-split "$PY" bench/throughput.py --mode=split "${COMMON[@]}"
  run js-tcp-single node bench/js_tcp_peer.js --mode=single "${COMMON[@]}"
  run js-tcp-split node bench/js_tcp_peer.js --mode=split "${COMMON[@]}"
  run py-vs-js-server "$PY" bench/throughput.py --peer=js-server "${COMMON[@]}"
  run py-vs-js-client "$PY" bench/throughput.py --peer=js-client "${COMMON[@]}"
  run py-single-trio "$PY" bench/throughput.py --mode=single --backend=trio "${COMMON[@]}"
  run py-split-trio "$PY" bench/throughput.py --mode=split --backend=trio "${COMMON[@]}"
  if [ -n "${UVLOOP_PATH:-}" ]; then
    run py-single-uvloop env PYTHONPATH="$UVLOOP_PATH${PYTHONPATH:+:$PYTHONPATH}" "$PY" bench/throughput.py --mode=single --uvloop "${COMMON[@]}"
    run py-split-uvloop env PYTHONPATH="$UVLOOP_PATH${PYTHONPATH:+:$PYTHONPATH}" "$PY" bench/throughput.py --mode=split --uvloop "${COMMON[@]}"
  fi
done
echo "load after: $(load)" >> "$OUT/env.txt"
echo "date end: $(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$OUT/env.txt"
if [ -f "$ANCHOR/aggregate.js" ]; then node "$ANCHOR/aggregate.js" "$OUT"; fi
