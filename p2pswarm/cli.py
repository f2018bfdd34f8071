"""The ``p2pswarm`` command line: one subcommand per task.

``p2pswarm dht-node`` runs a persistent DHT node (a bootstrap node for a private network)
until interrupted. Each subcommand is a ``_add_<name>`` function that registers its parser
and a handler returning the exit status, so new subcommands slot in beside it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio

from .dht import DHTNode, load_routing_state
from .errors import DHTError

__all__ = ("main",)

logger = logging.getLogger("p2pswarm.cli")

Handler = Callable[[argparse.Namespace], int]


def _address(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6 host]:port`` -> (host, port), for argparse."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _add_dht_node(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommands.add_parser(
        "dht-node",
        help="run a persistent DHT node (a bootstrap node) until interrupted",
        description="Run a persistent DHT node that routes and stores records for others. "
        "Its address is logged at start; pass it to swarms as their bootstrap list.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="UDP port (default: any free port)")
    parser.add_argument(
        "--bootstrap",
        type=_address,
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="another node to join through (repeatable); none starts a new network",
    )
    parser.add_argument(
        "--state",
        type=Path,
        help="JSON file for the node id and contacts: read at start if present, written at exit",
    )
    parser.set_defaults(handler=_run_dht_node)


async def _serve_dht_node(args: argparse.Namespace) -> None:
    bootstrap: list[tuple[str, int]] = list(args.bootstrap)
    node_id = None
    if args.state is not None and args.state.exists():
        state = load_routing_state(args.state)
        node_id = state.node_id
        bootstrap += [a for a in state.addresses if a not in bootstrap]
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with DHTNode(
            host=args.host, port=args.port, bootstrap=bootstrap, ephemeral=False, node_id=node_id
        ) as node:
            host, port = node.address
            shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            logger.info("dht-node listening on %s (id %s)", shown, node.node_id.hex())
            async for signum in signals:
                logger.info("dht-node stopping (%s)", signal.Signals(signum).name)
                break
            if args.state is not None:
                node.save_routing_state(args.state)
                logger.info("routing state saved to %s", args.state)


def _run_dht_node(args: argparse.Namespace) -> int:
    try:
        anyio.run(_serve_dht_node, args)
    except (DHTError, OSError) as exc:
        logger.error("dht-node: %s", exc)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2pswarm", description="Find peers by topic and talk over encrypted streams."
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_dht_node(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    handler: Handler = args.handler
    return handler(args)
