"""Every pair of NAT kinds tries to connect by key through a public HyperDHT.

``python -m tests.natlab.matrix`` (as root) builds the lab, starts JS HyperDHT bootstrap nodes
in the public namespace, then for each pair (server kind, client kind) runs the server program
on a host behind the first NAT and the client program on a host behind the second (two hosts
per kind, so a kind also meets itself), and prints one JSON line per pair, then a markdown
table. ``--subset`` runs the 7 pairs CI runs; ``--pairs a:b,c:d`` any others;
``--server-program`` / ``--client-program`` swap in another peer program (see peer.py), e.g.
the Python one, to get Python to Python and Python to JS matrices.

"connected" means the echo came back; "direct" that the client's UDX stream goes to the server
host's own public address (its NAT's), "relayed" that it goes elsewhere (no relay is configured
here, so a connection is always direct or missing).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

from tests.natlab.lab import (
    HERE,
    PUBLIC_IPS,
    Lab,
    LabError,
    Site,
    cleanup_stale,
    read_json_line,
)
from tests.natlab.nat import KINDS
from tests.natlab.peer import JS_PEER, NODE_ENV, PY_PEER, PeerProgram

#: Peer programs by name, for ``--server`` / ``--client`` (and ``--programs``).
PROGRAMS = {"js": JS_PEER, "py": PY_PEER}

__all__ = ("ALL_PAIRS", "ORDERED_PAIRS", "SUBSET", "markdown_table", "run_matrix")

#: The 21 unordered pairs of the six kinds (the server is behind the first).
ALL_PAIRS: tuple[tuple[str, str], ...] = tuple(itertools.combinations_with_replacement(KINDS, 2))

#: The 36 ordered pairs: who is the server matters to hyperdht (the server side picks the
#: relay and answers the holepunch rounds).
ORDERED_PAIRS: tuple[tuple[str, str], ...] = tuple(itertools.product(KINDS, repeat=2))

#: The 7 pairs CI runs: every kind on each side, both kinds of hole punch (consistent on both
#: sides; one random side), the open fast path, a double NAT meeting itself. Only one pair
#: needs the birthday punch (a consistent side probing random ports of a random side): each
#: probe hits with p = 256/64512, so it takes 5 s on average and misses JS's whole 35 s
#: window once in about a thousand runs.
SUBSET: tuple[tuple[str, str], ...] = (
    ("none", "symmetric"),
    ("full-cone", "port-restricted"),
    ("address-restricted", "double-nat"),
    ("port-restricted", "port-restricted"),
    ("port-restricted", "symmetric"),
    ("double-nat", "double-nat"),
    ("symmetric", "full-cone"),
)

DHT_PORT = 49737
#: The public DHT: 10 nodes on 10 addresses. hyperdht's NAT sampler skips the 5 most recent
#: nodes of a table of 8 or more and wants 3 to 4 answers, from more than one IP: with only 3
#: nodes, its puncher socket stays UNKNOWN and every hole punch aborts.
DHT_HOSTS = PUBLIC_IPS
BOOT_BOUND_S = 30.0
#: Beyond JS's own give-up: its random probing runs 1750 rounds of 20 ms.
CLIENT_TIMEOUT_MS = 45_000


def _arg(name: str, value: object) -> str:
    return f"--{name}={value}"


def start_public_dht(lab: Lab) -> list[str]:
    """Start the JS bootstrap nodes in the public namespace; their ``host:port`` list."""
    argv = ["node", str(HERE / "public_dht.js"), _arg("hosts", ",".join(DHT_HOSTS))]
    argv.append(_arg("port", DHT_PORT))
    proc = lab.spawn(lab.public_ns, argv, env=NODE_ENV)
    ready = read_json_line(proc, time.monotonic() + BOOT_BOUND_S)
    if ready is None or ready.get("event") != "ready":
        raise LabError(f"public DHT did not start: {ready!r} {lab.stop(proc)}")
    return list(ready["bootstrap"])


def run_pair(
    lab: Lab,
    server_site: Site,
    client_site: Site,
    bootstrap: Sequence[str],
    server_program: PeerProgram = JS_PEER,
    client_program: PeerProgram = JS_PEER,
) -> dict[str, Any]:
    """One connection attempt from ``client_site`` to a server on ``server_site``."""
    row: dict[str, Any] = {
        "server": f"{server_program.name}@{server_site.kind}",
        "client": f"{client_program.name}@{client_site.kind}",
        "server_kind": server_site.kind,
        "client_kind": client_site.kind,
    }
    boot = _arg("bootstrap", ",".join(bootstrap))
    timeout = CLIENT_TIMEOUT_MS + 5000
    seed = os.urandom(32).hex()
    server_argv = [*server_program.argv, "--role=server", boot, _arg("seed", seed)]
    server = lab.spawn(
        server_site.host_ns, [*server_argv, _arg("timeout-ms", timeout)], server_program.environ()
    )
    client = None
    try:
        listening = read_json_line(server, time.monotonic() + BOOT_BOUND_S)
        if listening is None or listening.get("event") != "listening":
            row.update(connected=False, path=None, error=f"server: {listening!r}")
            return row
        row["server_nat"] = _nat(listening)
        client_argv = [*client_program.argv, "--role=client", boot]
        client_argv += [_arg("key", listening["publicKey"]), _arg("timeout-ms", CLIENT_TIMEOUT_MS)]
        client = lab.spawn(client_site.host_ns, client_argv, client_program.environ())
        deadline = time.monotonic() + CLIENT_TIMEOUT_MS / 1000 + BOOT_BOUND_S
        result = read_json_line(client, deadline)
        while result is not None and result.get("event") not in ("result", "error"):
            result = read_json_line(client, deadline)
        if result is None or result.get("event") != "result":
            row.update(connected=False, path=None, error=f"client: {result!r}")
            return row
        row["client_nat"] = _nat(result)
        if "stack" in result:
            row["stack"] = result["stack"]
        row["connected"] = bool(result.get("connected"))
        row["ms"] = result.get("ms")
        remote = result.get("remote")
        row["remote"] = remote
        if row["connected"]:
            host = remote.get("host") if isinstance(remote, dict) else None
            direct = host in (server_site.public_ip, server_site.host_ip)
            row["path"] = "direct" if direct else "relayed"
        else:
            row["path"] = None
            row["error"] = result.get("error")
        return row
    finally:
        if client is not None:
            tail = lab.stop(client)
            if not row.get("connected") and tail:
                row["client_stderr"] = tail[-500:]
        lab.stop(server)


def _nat(message: dict[str, Any]) -> dict[str, Any]:
    return {k: message[k] for k in ("firewalled", "randomized", "punches") if k in message}


def run_matrix(
    pairs: Iterable[tuple[str, str]],
    combos: Sequence[tuple[PeerProgram, PeerProgram]] = ((JS_PEER, JS_PEER),),
    on_row: Any = None,
) -> list[dict[str, Any]]:
    """Build a lab with two hosts per kind needed, run every pair once per (server program,
    client program) combination, on the same lab; one row per pair and combination (its
    ``programs`` is ``"server:client"``)."""
    pairs = list(pairs)
    rows = []
    with Lab("matrix") as lab:
        sites: dict[tuple[str, int], Site] = {}
        for server_kind, client_kind in pairs:
            for key in ((server_kind, 0), (client_kind, 1)):
                if key not in sites:
                    sites[key] = lab.add_site(key[0])
        bootstrap = start_public_dht(lab)
        for server_kind, client_kind in pairs:
            for server_program, client_program in combos:
                lab.reset_filters()
                started = time.monotonic()
                row = run_pair(
                    lab,
                    sites[(server_kind, 0)],
                    sites[(client_kind, 1)],
                    bootstrap,
                    server_program,
                    client_program,
                )
                row["programs"] = f"{server_program.name}:{client_program.name}"
                row["wall_s"] = round(time.monotonic() - started, 2)
                rows.append(row)
                if on_row is not None:
                    on_row(row)
    return rows


def _cell(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return ""
    good = [r for r in rows if r.get("connected")]
    if not good:
        errors = sorted({str(r.get("error")) for r in rows})
        return f"**no** ({', '.join(errors)})"
    paths = "/".join(sorted({str(r["path"]) for r in good}))
    ms = sorted(int(r["ms"]) for r in good)
    text = f"{paths}, {statistics.median_low(ms)} ms"
    if len(ms) > 1:
        text += f" ({ms[0]}..{ms[-1]})"
    if len(good) < len(rows):
        text = f"**{len(good)}/{len(rows)}** {text}"
    return text


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """A kinds x kinds table (server kind down, client kind across) of the rows.

    With several rows per pair (``--runs``) a cell shows the median time and the range.
    """
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by_pair.setdefault((r["server_kind"], r["client_kind"]), []).append(r)
    kinds = [k for k in KINDS if any(k in pair for pair in by_pair)]
    lines = [
        "| server \\ client | " + " | ".join(kinds) + " |",
        "|---" * (len(kinds) + 1) + "|",
    ]
    ordered = any((c, s) in by_pair and s != c for s, c in by_pair)
    for i, s in enumerate(kinds):
        cells = []
        for j, c in enumerate(kinds):
            if ordered:
                cells.append(_cell(by_pair.get((s, c), [])))
            elif j >= i:
                cells.append(_cell(by_pair.get((s, c)) or by_pair.get((c, s), [])))
            else:
                cells.append("")
        lines.append(f"| **{s}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _parse_pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(","):
        a, b = item.split(":")
        if a not in KINDS or b not in KINDS:
            raise SystemExit(f"unknown kind in {item!r}; kinds: {', '.join(KINDS)}")
        pairs.append((a, b))
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.natlab.matrix", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--subset", action="store_true", help="the 7 pairs CI runs")
    group.add_argument("--pairs", help="server_kind:client_kind,... (default: all 21)")
    group.add_argument("--ordered", action="store_true", help="all 36 ordered pairs")
    group.add_argument(
        "--cleanup-stale",
        action="store_true",
        help="only delete the namespaces of lab runs whose process is gone, then exit",
    )
    parser.add_argument("--server", choices=sorted(PROGRAMS), help="a built-in server program")
    parser.add_argument("--client", choices=sorted(PROGRAMS), help="a built-in client program")
    parser.add_argument(
        "--combos",
        help="several server:client program pairs run on one lab, e.g. js:js,py:py,py:js,js:py",
    )
    parser.add_argument("--server-program", help="peer program command (default: js_peer.js)")
    parser.add_argument("--client-program", help="peer program command (default: js_peer.js)")
    parser.add_argument("--name", default="custom", help="the custom program's report name")
    parser.add_argument("--runs", type=int, default=1, help="repeat on a fresh lab N times")
    args = parser.parse_args(argv)
    if args.cleanup_stale:
        for name in cleanup_stale():
            print("deleted", name)
        return 0
    if args.subset:
        pairs: Sequence[tuple[str, str]] = SUBSET
    elif args.ordered:
        pairs = ORDERED_PAIRS
    else:
        pairs = _parse_pairs(args.pairs) if args.pairs else ALL_PAIRS
    server = PeerProgram.parse(args.name, args.server_program) if args.server_program else JS_PEER
    client = PeerProgram.parse(args.name, args.client_program) if args.client_program else JS_PEER
    if args.server:
        server = PROGRAMS[args.server]
    if args.client:
        client = PROGRAMS[args.client]
    combos = [(server, client)]
    if args.combos:
        combos = [
            (PROGRAMS[a], PROGRAMS[b]) for a, b in (c.split(":") for c in args.combos.split(","))
        ]
    started = time.monotonic()

    def emit(row: dict[str, Any]) -> None:
        print(json.dumps(row), flush=True)

    rows = []
    for run in range(max(1, args.runs)):

        def emit_run(row: dict[str, Any], run: int = run) -> None:
            emit({"run": run, **row})

        rows += run_matrix(pairs, combos, emit_run)
    connected = sum(1 for r in rows if r.get("connected"))
    summary = {"pairs": len(rows), "connected": connected}
    summary["wall_s"] = round(time.monotonic() - started, 1)
    print(json.dumps({"summary": summary}), flush=True)
    for s_prog, c_prog in combos:
        name = f"{s_prog.name}:{c_prog.name}"
        print()
        print(f"server {s_prog.name}, client {c_prog.name}:")
        print()
        print(markdown_table([r for r in rows if r.get("programs") == name]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
