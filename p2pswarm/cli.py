"""The ``p2pswarm`` command line (also ``python -m p2pswarm``).

This module only parses arguments and dispatches; each subcommand lives in
:mod:`p2pswarm.commands`. Options shared by every subcommand (``--key``, ``--json``,
``--bootstrap``, ``--local-port``, ``--host``, ``-v``) are accepted after the subcommand
name. With neither ``--bootstrap`` nor ``P2PSWARM_BOOTSTRAP`` set, commands run on the
embedded local network (:mod:`p2pswarm.networks.local_network`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .commands._common import bootstrap_argument, run_command
from .networks.local_network import DEFAULT_LOCAL_PORT, FALLBACK_PORTS

__all__ = ("build_parser", "main")

_EPILOG = """\
Networks: by default every command runs on the local network embedded in p2pswarm
processes on this machine (127.0.0.1 only; base port 49737, or P2PSWARM_LOCAL_PORT).
Use --bootstrap HOST:PORT[,...] or P2PSWARM_BOOTSTRAP to use a DHT across machines,
started with 'p2pswarm dht-node --host 0.0.0.0'.
Exit status: 0 done, 1 failed, 2 bad command-line input.
"""


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 0xFFFF - FALLBACK_PORTS + 1:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}")
    return int(text)


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument(
        "--key",
        type=Path,
        metavar="FILE",
        help="identity key file (created if missing; default: a new random identity)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        help="machine-readable events, one JSON object per line (on stdout; on stderr for join)",
    )
    group.add_argument(
        "--bootstrap",
        type=bootstrap_argument,
        action="append",
        metavar="HOST:PORT[,...]",
        help="DHT nodes to join instead of the local network (or env P2PSWARM_BOOTSTRAP)",
    )
    group.add_argument(
        "--local-port",
        type=_port,
        metavar="PORT",
        help=f"base port of the local network (default {DEFAULT_LOCAL_PORT} "
        "or env P2PSWARM_LOCAL_PORT)",
    )
    group.add_argument(
        "--host",
        metavar="ADDRESS",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 with a non-loopback bootstrap)",
    )
    group.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-vv for debug)"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2pswarm",
        description="Find peers by topic and talk over end-to-end encrypted streams.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common_options()

    def add(name: str, help_text: str, run: Callable[..., Any], **kw: Any) -> Any:
        command = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        command.set_defaults(run=run, **kw)
        return command

    from .commands import chat, dht_node, join, keygen, status, transfer

    command = add("keygen", "make an identity key pair", keygen.keygen, sync=True)
    command.add_argument("--out", type=Path, metavar="FILE", help="write the key file here")

    command = add(
        "join",
        "pipe stdin to every peer on TOPIC and peers to stdout",
        join.join,
        events_to_stderr=True,  # stdout carries the data
    )
    command.add_argument("topic", metavar="TOPIC", help="a name, or 64 hex digits")

    command = add("chat", "line chat with everyone on TOPIC", chat.chat)
    command.add_argument("topic", metavar="TOPIC", help="a name, or 64 hex digits")

    command = add("send", "send FILE to the peer with public key KEY", transfer.send)
    command.add_argument("file", type=Path, metavar="FILE")
    command.add_argument("--peer", required=True, metavar="KEY", help="the receiver's public key")
    # Fault injection for tests of resuming: drop the connection once after N bytes.
    command.add_argument("--drop-after", type=int, help=argparse.SUPPRESS)

    command = add("receive", "receive files sent to this identity", transfer.receive)
    command.add_argument(
        "--out-dir", type=Path, default=Path("."), metavar="DIR", help="where files go"
    )
    command.add_argument("--from", dest="sender", metavar="KEY", help="accept only this sender")
    command.add_argument(
        "--keep-going", action="store_true", help="keep receiving after the first file"
    )
    command.add_argument(
        "--overwrite", action="store_true", help="replace an existing file with a different one"
    )
    command.add_argument(
        "--max-size", type=int, metavar="BYTES", help="refuse files larger than this"
    )

    command = add(
        "dht-node",
        "run a persistent DHT node (a network's bootstrap) until stopped",
        dht_node.dht_node,
    )
    command.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"UDP port (default: the local network's, {DEFAULT_LOCAL_PORT}; 0 for any)",
    )
    command.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="node id and contacts: read at start, saved at exit",
    )

    command = add("status", "show what the network knows (and who is on TOPICs)", status.status)
    command.add_argument("topics", nargs="*", metavar="TOPIC", help="topics to look up")
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    """The library logs on ``p2pswarm.*``; commands turn those records into output lines."""
    if args.log_level is not None:
        level = getattr(logging, args.log_level)
    else:
        level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.getLogger("p2pswarm").setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args)
    if args.command == "dht-node":
        if args.host is None:
            args.host = "127.0.0.1"
        if args.port is None:
            try:
                from .networks.local_network import local_port_from_env

                args.port = local_port_from_env() if args.local_port is None else args.local_port
            except ValueError as exc:
                parser.error(str(exc))
    if getattr(args, "sync", False):
        from .commands._common import CommandError, Output

        out = Output(json_mode=args.json)
        try:
            result: int = args.run(args, out)
        except CommandError as exc:
            out.error(str(exc))
            return exc.status
        return result
    try:
        events = sys.stderr if getattr(args, "events_to_stderr", False) else None
        return run_command(args, args.run, events=events)
    except KeyboardInterrupt:  # a second Ctrl-C while shutting down
        return 130
