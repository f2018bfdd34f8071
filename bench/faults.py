"""Figures of the fault scenarios across network namespaces (``tests/netlab``): how long
the four-host mesh takes to converge with and without 5 % loss both ways, how long 20 MB
take over TCP (``p2pswarm send``/``receive``) and over encrypted UDX under that loss, and
how long a pulled cable takes to be noticed (keep-alives) and to heal once plugged back.

The tests check the outcomes; this times them. Each figure is wall time from the step's
start to the output line that ends it, one JSON line per run; run ``--rounds`` times and
report medians with ranges. Needs root, ``ip``, ``nft``, ``tc``.

    .venv/bin/python bench/faults.py --rounds 3 [--only mesh tcp udx cable]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _common import emit, summary, versions  # noqa: E402

from tests.cli.ports import free_base_port  # noqa: E402
from tests.cli.proc import runner  # noqa: E402
from tests.netlab.kit import Lab, fault_tools_missing, unavailable  # noqa: E402
from tests.netlab.run import (  # noqa: E402
    chat_mesh,
    dht_node,
    start_receiver,
    start_sender,
    udx_transfer,
)

LOSS = 5
SIZE = 20 * 1024 * 1024


def same(one: Path, other: Path) -> bool:
    return one.read_bytes() == other.read_bytes()


def lossy(lab: Lab) -> None:
    for host in lab.hosts:
        lab.drop(host, LOSS)
        lab.rate(host, "100mbit")


async def mesh(loss: bool) -> dict[str, Any]:
    with Lab(4) as lab:
        if loss:
            lossy(lab)
        async with runner(free_base_port()) as cli:
            _, bootstrap = await dht_node(cli, lab.hosts[0])
            t0 = time.perf_counter()
            await chat_mesh(cli, lab.hosts, bootstrap, "bench-mesh", limit=120)
            return {"test": "mesh", "loss_percent": LOSS if loss else 0,
                    "seconds": time.perf_counter() - t0}  # fmt: skip


async def tcp(directory: Path, source: Path) -> dict[str, Any]:
    inbox = directory / "inbox"
    inbox.mkdir()
    with Lab(3) as lab:
        lossy(lab)
        async with runner(free_base_port()) as cli:
            _, bootstrap = await dht_node(cli, lab.hosts[0])
            receiver, key = await start_receiver(
                cli, lab.hosts[1], bootstrap, inbox, directory / "k"
            )
            t0 = time.perf_counter()
            sender = await start_sender(cli, lab.hosts[2], bootstrap, source, key)
            code = await sender.wait_exit(limit=600)
            seconds = time.perf_counter() - t0
            assert code == 0 and await receiver.wait_exit() == 0, sender.err
    intact = same(inbox / source.name, source)
    return {"test": "tcp-20MB", "loss_percent": LOSS, "seconds": seconds, "intact": intact}


async def udx(directory: Path, source: Path, delay: float) -> dict[str, Any]:
    target = directory / "udx.bin"
    with Lab(3) as lab:
        lossy(lab)
        async with runner(free_base_port()) as cli:
            t0 = time.perf_counter()
            await udx_transfer(cli, lab.hosts[1], lab.hosts[2], source, target, delay=delay,
                               limit=600)  # fmt: skip
            seconds = time.perf_counter() - t0
    intact = same(target, source)
    return {"test": "udx-20MB", "loss_percent": LOSS, "delay_ms": delay * 1000,
            "seconds": seconds, "intact": intact}  # fmt: skip


async def cable() -> dict[str, Any]:
    with Lab(3) as lab:
        async with runner(free_base_port()) as cli:
            _, bootstrap = await dht_node(cli, lab.hosts[0])
            (a, _b), keys = await chat_mesh(cli, lab.hosts[1:], bootstrap, "bench-cable")
            t0 = time.perf_counter()
            lab.unplug(lab.hosts[2])
            await a.wait_for(rf'"event":"leave"[^\n]*"peer":"{keys[1]}"', stream="stdout",
                             limit=120)  # fmt: skip
            detected = time.perf_counter() - t0
            joins = a.out.count('"event":"join"')
            t1 = time.perf_counter()
            lab.plug(lab.hosts[2])
            await a.wait_for(rf'(?s)(?:"event":"join".*){{{joins + 1}}}', stream="stdout",
                             limit=300)  # fmt: skip
            healed = time.perf_counter() - t1
    return {"test": "cable", "detected_seconds": detected, "rejoined_seconds": healed}


async def main(args: argparse.Namespace) -> None:
    info = versions()
    results: dict[str, list[float]] = {}

    def record(result: dict[str, Any], round_: int) -> None:
        emit({**result, "round": round_, "load": os.getloadavg()[0], "versions": info})
        for key, value in result.items():
            if key.endswith("seconds"):
                name = f"{result['test']}-{result.get('loss_percent', '')}-{key}"
                results.setdefault(name, []).append(value)

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        source = directory / "payload.bin"
        source.write_bytes(os.urandom(SIZE))
        for round_ in range(args.rounds):
            if "mesh" in args.only:
                record(await mesh(False), round_)
                record(await mesh(True), round_)
            if "tcp" in args.only:
                work = directory / f"tcp{round_}"
                work.mkdir()
                record(await tcp(work, source), round_)
            if "udx" in args.only:
                record(await udx(directory, source, args.delay), round_)
            if "cable" in args.only:
                record(await cable(), round_)
    for name, values in results.items():
        emit({"summary": name, **summary(values)})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.005, help="UDX hook delay, seconds")
    parser.add_argument("--only", nargs="+", default=["mesh", "tcp", "udx", "cable"])
    arguments = parser.parse_args()
    reason = unavailable() or fault_tools_missing()
    if reason is not None:
        raise SystemExit(f"faults: {reason}")
    anyio.run(main, arguments)
