"""UDX bulk throughput under 1 % and 5 % packet loss, Python next to JS udx-native, on the
same lossy link in the same run.

Two network namespaces joined by a bridge (``tests/netlab/kit.py``); nftables drops
``--loss`` percent of what each namespace sends (so that loss on each direction), and a
receiver in one namespace takes ``--mib`` MiB in 64 KiB writes from a sender in the other,
raw UDX streams (no secret stream). Each end is its own process: ours is this script with
``--role``, JS's is ``bench/js_udx_loss.js``. MB/s is timed by the receiver, first byte to
last. With ``--hook`` our side also runs on the same link with the loss from our seeded
fault hook instead of nftables (JS has no such hook). Needs root, ``ip``, ``nft``.
One JSON line per run:

    .venv/bin/python bench/udx_loss.py --mib 16 --rounds 3 --loss 1 5 [--hook]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))  # this tree's p2pswarm, whichever is installed

from _common import emit, versions  # noqa: E402

from p2pswarm.transports.udx import Faults, UDXStream, open_udx_socket  # noqa: E402

PORT = 40200
TIMEOUT = 300.0


# -- one end, inside a namespace --------------------------------------------------------------


class OutgoingLoss(Faults):
    """The hook on what this end sends only, as nftables' rule is: ``drop`` per direction."""

    def incoming(self, datagram: bytes) -> list[bytes]:
        return [datagram]


async def run_end(
    role: str, host: str, port: int, peer: str, mib: int, faults: Faults | None
) -> None:
    total = mib * 1024 * 1024
    peer_host, _, peer_port = peer.rpartition(":")
    receiver = role == "recv"
    async with open_udx_socket(host, port, faults=faults) as sock:
        stream: UDXStream = sock.create_stream(1 if receiver else 2)
        stream.connect(2 if receiver else 1, peer_host, int(peer_port))
        if receiver:
            print("listening", flush=True)
            received, t0 = 0, 0.0
            while received < total:
                data = await stream.receive(1 << 20)
                if not received:
                    t0 = time.perf_counter()
                received += len(data)
            seconds = time.perf_counter() - t0
            line = {"impl": "py", "mib": mib, "seconds": seconds, "mb_per_s": total / 1e6 / seconds}
            print(json.dumps(line), flush=True)
            await stream.send_eof()
        else:
            chunk = os.urandom(65536)
            for _ in range(total // len(chunk)):
                await stream.send(chunk)
            await stream.send_eof()
            try:
                while True:
                    await stream.receive()
            except anyio.EndOfStream:
                pass
        with anyio.move_on_after(30):  # our END acked before the socket goes
            await stream.wait_closed()


# -- the orchestrator -------------------------------------------------------------------------


def js_available() -> bool:
    return (
        shutil.which("node") is not None
        and (REPO / "tests/interop/node_modules/udx-native").is_dir()
    )


def end_command(impl: str, role: str, host: str, peer: str, mib: int) -> list[str]:
    if impl == "js":
        node = shutil.which("node") or "node"
        return [node, str(HERE / "js_udx_loss.js"), f"--role={role}", f"--host={host}",
                f"--port={PORT}", f"--peer={peer}", f"--mib={mib}"]  # fmt: skip
    return [sys.executable, str(Path(__file__).resolve()), "--role", role, "--host", host,
            "--port", str(PORT), "--peer", peer, "--mib", str(mib)]  # fmt: skip


def transfer(command: Any, rx_argv: list[str], tx_argv: list[str]) -> dict[str, Any]:
    """Receiver first (until it says ``listening``), then the sender; the receiver's line."""
    rx = subprocess.Popen(command(0, rx_argv), stdout=subprocess.PIPE, text=True, cwd=REPO)
    tx = None
    try:
        assert rx.stdout is not None
        first = rx.stdout.readline()
        if first.strip() != "listening":
            raise RuntimeError(f"receiver said {first!r}")
        tx = subprocess.Popen(command(1, tx_argv), stdout=subprocess.DEVNULL, cwd=REPO)
        line = rx.stdout.readline()
        result: dict[str, Any] = json.loads(line)
        tx.wait(timeout=TIMEOUT)  # it leaves once the receiver ended back; then we are done
        return result
    finally:
        for proc in (rx, tx):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("recv", "send"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--peer", default="")
    parser.add_argument("--drop", type=float, default=0.0, help="(--role) our fault hook's loss")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mib", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loss", type=int, nargs="+", default=[1, 5], metavar="PERCENT")
    parser.add_argument("--hook", action="store_true", help="also our fault hook on loopback")
    args = parser.parse_args()
    if args.role is not None:
        faults = OutgoingLoss(seed=args.seed, drop=args.drop) if args.drop else None
        anyio.run(run_end, args.role, args.host, args.port, args.peer, args.mib, faults)
        return

    from tests.netlab.kit import Lab, fault_tools_missing, unavailable

    reason = unavailable() or fault_tools_missing()
    if reason is not None:
        raise SystemExit(f"udx_loss: {reason}")
    impls = ["py", "js"] if js_available() else ["py"]
    info = versions()
    with Lab(2) as lab:
        rx_host, tx_host = lab.hosts
        hosts = (rx_host, tx_host)

        def in_namespace(index: int, argv: list[str]) -> list[str]:
            return hosts[index].command(argv)

        for loss in args.loss:
            for host in hosts:
                lab.drop(host, loss)
            for round_ in range(args.rounds):
                for impl in impls:
                    load = os.getloadavg()[0]
                    rx_argv = end_command(
                        impl, "recv", rx_host.address, f"{tx_host.address}:{PORT}", args.mib
                    )
                    tx_argv = end_command(
                        impl, "send", tx_host.address, f"{rx_host.address}:{PORT}", args.mib
                    )
                    result = transfer(in_namespace, rx_argv, tx_argv)
                    emit({**result, "loss_percent": loss, "link": "nftables", "round": round_,
                          "load": load, "versions": info})  # fmt: skip
            for host in hosts:
                lab.undrop(host)
            if not args.hook:
                continue
            # The same link without nftables' loss; our seeded hook drops as much instead.
            hook = ["--drop", str(loss / 100)]
            for round_ in range(args.rounds):
                load = os.getloadavg()[0]
                rx_argv = end_command(
                    "py", "recv", rx_host.address, f"{tx_host.address}:{PORT}", args.mib
                )
                tx_argv = end_command(
                    "py", "send", tx_host.address, f"{rx_host.address}:{PORT}", args.mib
                )
                result = transfer(
                    in_namespace,
                    [*rx_argv, *hook, "--seed", str(round_)],
                    [*tx_argv, *hook, "--seed", str(round_ + 100)],
                )
                emit({**result, "loss_percent": loss, "link": "hook", "round": round_,
                      "load": load, "versions": info})  # fmt: skip


if __name__ == "__main__":
    main()
