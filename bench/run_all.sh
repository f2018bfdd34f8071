#!/usr/bin/env bash
# The one command: every benchmark interleaved with the JS Hyperswarm anchor, then
# SUMMARY.md (each row's ratio to JS) and charts. See bench/run_all.py for the options.
#
#   ANCHOR=/tmp/js-anchor bench/run_all.sh                 # full set, 3 rounds
#   ANCHOR=/tmp/js-anchor bench/run_all.sh --quick         # about a minute (SMOKE=1 too)
#   ANCHOR=/tmp/js-anchor bench/run_all.sh --growth --extras
#
# Environment kept from the earlier shell version: RUNS, ONLY (a name prefix), OUT, BACKEND,
# PY, SMOKE=1 (= --quick), EXTRAS=1 (= --extras), SNAPSHOT=0 (= --worktree).
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
[ -n "${RUNS:-}" ] && args+=(--runs "$RUNS")
[ -n "${ONLY:-}" ] && args+=(--only "$ONLY")
[ -n "${OUT:-}" ] && args+=(--out "$OUT")
[ -n "${BACKEND:-}" ] && args+=(--backend "$BACKEND")
[ "${SMOKE:-0}" = "1" ] && args+=(--quick)
[ "${EXTRAS:-0}" = "1" ] && args+=(--extras)
[ "${SNAPSHOT:-1}" = "0" ] && args+=(--worktree)
exec "${PY:-.venv/bin/python}" bench/run_all.py "${args[@]}" "$@"
