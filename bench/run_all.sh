#!/usr/bin/env bash
# Swarm benchmarks interleaved with the JS Hyperswarm anchor: in each of RUNS rounds (default
# 3), every benchmark runs once in JS, then once in Python (JS, Py, JS, Py, ...), one after
# another (never in parallel: the box has 2 cores). One JSON line per run is appended to
# $OUT/<bench>-js.jsonl and $OUT/<bench>-py.jsonl; $OUT/env.txt records the machine, the
# versions and the load before, during (per round) and after. Then the anchor's aggregate.js
# prints the median-of-runs table of the folder, JS and Python files side by side.
#
#   cp -r ../shared/anchors/js-hyperswarm /tmp/js-anchor && (cd /tmp/js-anchor && npm ci)
#   ANCHOR=/tmp/js-anchor bench/run_all.sh
#   RUNS=5 OUT=bench/results/mine BACKEND=trio ONLY=scale EXTRAS=0 bench/run_all.sh
#
# The tree is shared with colleagues committing all the time: by default the Python side runs
# from a snapshot of HEAD (p2pswarm/ and bench/ exported to a temporary directory, put first
# on PYTHONPATH), so every round measures the same commit; SNAPSHOT=0 runs the working tree.
# SMOKE=1 shrinks every parameter (iterations, N, waits) to check the pipeline in a minute or two.
# ONLY=<prefix> runs only benchmarks whose name starts with it. EXTRAS=0 skips the one-off
# runs after the rounds (3 drops in a row, dead-peer detection). Loopback only: every DHT and
# swarm binds 127.0.0.1 and uses a local testnet; each line reports ext_tx_packets_delta.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-3}"
ONLY="${ONLY:-}"
EXTRAS="${EXTRAS:-1}"
BACKEND="${BACKEND:-asyncio}"
ANCHOR="$(cd "${ANCHOR:-/tmp/js-anchor}" && pwd)"
OUT="${OUT:-bench/results/$(date -u +%Y-%m-%d)-swarm}"
PY="${PY:-.venv/bin/python}"
SNAPSHOT="${SNAPSHOT:-1}"
if [ "${SMOKE:-0}" = "1" ]; then
  CONNECT_ITER=3; NS="10"; SIM_N=10; STABLE_MS=3000; TOPIC_ITER=1; JOINPEER_ITER=1; DROPS=2; DEAD_ITER=1
else
  CONNECT_ITER=20; NS="20 50"; SIM_N=20; STABLE_MS=15000; TOPIC_ITER=10; JOINPEER_ITER=5; DROPS=3; DEAD_ITER=3
fi
mkdir -p "$OUT"
if [ "$SNAPSHOT" = "1" ]; then
  COMMIT="$(git rev-parse --short HEAD)"
  SRC="$(mktemp -d "/tmp/p2pswarm-bench-$COMMIT.XXXXXX")"
  trap 'rm -rf "$SRC"' EXIT
  git archive HEAD p2pswarm bench | tar -x -C "$SRC"
  export PYTHONPATH="$SRC${PYTHONPATH:+:$PYTHONPATH}"
  COMMIT_NOTE="$COMMIT (snapshot of HEAD in $SRC)"
else
  SRC="$(pwd)"
  COMMIT_NOTE="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- p2pswarm 2>/dev/null || echo ' + uncommitted changes under p2pswarm/')"
fi
[ -d "$ANCHOR/node_modules/hyperswarm" ] || { echo "run 'npm ci' in $ANCHOR first" >&2; exit 1; }

load() { echo "$(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min); running: $(grep procs_running /proc/stat | cut -d' ' -f2)"; }
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "node: $(node --version)"
  echo "python: $($PY --version 2>&1) (backend $BACKEND)"
  echo "anchor npm ls:"; (cd "$ANCHOR" && npm ls hyperswarm hyperdht 2>/dev/null) || true
  echo "python packages: $($PY -m pip list 2>/dev/null | grep -iE '^(anyio|cryptography|pynacl|noiseprotocol|trio|kademlia) ' | tr -s ' ' | paste -sd, -)"
  echo "p2pswarm commit: $COMMIT_NOTE"
  echo "kernel: $(uname -sr)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "mem: $(free -m | awk '/Mem:/{print $2" MiB"}')"
  echo "uptime before: $(uptime)"
  echo "load before: $(load)"
} > "$OUT/env.txt"
cat "$OUT/env.txt"

pair() { # name, JS args (after "node", run in the anchor dir), "--", Python args (script under $SRC)
  local name="$1"; shift
  if [ -n "$ONLY" ] && [[ "$name" != "$ONLY"* ]]; then return; fi
  local js=() py=()
  while [ "$1" != "--" ]; do js+=("$1"); shift; done; shift
  py=("$@")
  echo ">> $name js: node ${js[*]}" >&2
  (cd "$ANCHOR" && ANCHOR="$ANCHOR" node "${js[@]}") >> "$OUT/$name-js.jsonl"
  echo ">> $name py: ${py[*]}" >&2
  "$PY" "$SRC/${py[0]}" "${py[@]:1}" --backend="$BACKEND" >> "$OUT/$name-py.jsonl"
}

for i in $(seq 1 "$RUNS"); do
  echo "round $i/$RUNS start $(date -u +%H:%M:%S): $(load)" | tee -a "$OUT/env.txt" >&2
  pair connect connect.js --iterations=$CONNECT_ITER --warmup=1 --nodes=10 \
    -- bench/connect.py --iterations=$CONNECT_ITER --warmup=1 --nodes=10
  for n in $NS; do
    for j in sequential refresh; do
      pair "scale-n$n-$j" --expose-gc scale.js --n=$n --join=$j \
        -- bench/scale.py --n=$n --join=$j
    done
  done
  # JS finds nobody for 10 minutes here (stops 'stable' at 0 links); we must reach all.
  pair scale-n$SIM_N-simultaneous --expose-gc scale.js --n=$SIM_N --join=simultaneous --stable-ms=$STABLE_MS \
    -- bench/scale.py --n=$SIM_N --join=simultaneous --stable-ms=$STABLE_MS
  pair reconnect-topic reconnect.js --iterations=$TOPIC_ITER --side=both --via=topic \
    -- bench/reconnect.py --iterations=$TOPIC_ITER --side=both --via=topic
  pair reconnect-joinpeer reconnect.js --iterations=$JOINPEER_ITER --side=both --via=joinPeer \
    -- bench/reconnect.py --iterations=$JOINPEER_ITER --side=both --via=join_peer
done

if [ "$EXTRAS" = "1" ] && [ -z "$ONLY" ]; then
  echo "extras start $(date -u +%H:%M:%S): $(load)" | tee -a "$OUT/env.txt" >&2
  # back-off escalation: the same pair dropped 3 times in a row (< 15 s apart)
  pair reconnect-${DROPS}drops reconnect.js --iterations=2 --side=client --drops=$DROPS \
    -- bench/reconnect.py --iterations=2 --side=client --drops=$DROPS
  # a peer that freezes (SIGSTOP) is found dead by the keep-alive clocks, within the
  # configured idle timeout (library defaults: keep-alive 5 s, idle timeout 20 s)
  # (JS: bench/js_dead_peer.js, Hyperswarm's own defaults; UDX sees no kernel close on kill)
  pair dead-peer-stop "$SRC/bench/js_dead_peer.js" --iterations=$DEAD_ITER --signal=stop \
    -- bench/dead_peer.py --iterations=$DEAD_ITER --signal=stop
  pair dead-peer-kill "$SRC/bench/js_dead_peer.js" --iterations=$DEAD_ITER --signal=kill \
    -- bench/dead_peer.py --iterations=$DEAD_ITER --signal=kill
fi

echo "uptime after: $(uptime)" >> "$OUT/env.txt"
echo "load after: $(load)" >> "$OUT/env.txt"
echo "date end: $(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$OUT/env.txt"
node "$ANCHOR/aggregate.js" "$OUT"
"$PY" bench/summarize_swarm.py "$OUT"
