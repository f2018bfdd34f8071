"""What every subcommand shares: output, errors, topics, identities, the network, stdio.

Output convention: people read stderr, programs read ``--json`` events. Human messages
(status lines, joins and leaves, progress, warnings, errors) go to stderr, one line each.
With ``--json`` the same happenings are JSON objects, one per line, with an ``"event"``
key; they go to stdout, except for ``join``, whose stdout carries the peers' raw bytes, so
its events go to stderr. Errors are one line (``p2pswarm: error: ...``) and a non-zero
exit status: 2 for bad input on the command line, 1 for everything else.

Commands run on asyncio; ``P2PSWARM_ASYNC_BACKEND=trio`` runs them on trio instead (the
tests use it to keep the CLI honest on both).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Final, TextIO

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream

from ..dht import DHTNode
from ..errors import KeyFileError
from ..keys import TOPIC_SIZE, KeyPair, topic
from ..networks.discovery_backend import DiscoveryBackend
from ..networks.local_network import LocalDiscovery, bootstrap_from_env, parse_bootstrap
from ..swarm import Swarm

__all__ = (
    "EXIT_ERROR",
    "EXIT_USAGE",
    "CommandError",
    "Network",
    "Output",
    "bootstrap_argument",
    "load_identity",
    "open_swarm",
    "parse_peer_key",
    "parse_topic",
    "run_command",
    "short_id",
    "stdin_chunks",
    "wait_any",
    "write_stdout",
)

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
#: A topic argument of only hex digits this long or longer is meant as a hex topic.
HEX_TOPIC_MIN_DIGITS: Final = 32
MAX_TOPIC_NAME_BYTES: Final = 1024
#: Retry delays for CLI swarms: a dropped peer is redialled within half a second.
CLI_BACKOFFS: Final = (0.5, 2.0, 5.0, 60.0)

_HEX = re.compile(r"[0-9a-fA-F]+")


class CommandError(Exception):
    """A failure to report as one line and an exit status (no traceback)."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.status = status


# -- output ---------------------------------------------------------------------------------


class Output:
    """Human lines on stderr, or JSON events (see the module docstring for where)."""

    def __init__(self, *, json_mode: bool, events: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self._events = events if events is not None else sys.stdout
        #: Set on SIGINT/SIGTERM: commands finish their work and return normally.
        self.stop = anyio.Event()

    def event(self, kind: str, human: str | None = None, **fields: Any) -> None:
        """Report one happening: ``human`` on stderr, or a JSON object in JSON mode."""
        if self.json_mode:
            record = {"event": kind, "time": round(time.time(), 3), **fields}
            self._write(self._events, json.dumps(record, separators=(",", ":")))
        elif human is not None:
            self._write(sys.stderr, human)

    def warning(self, message: str) -> None:
        self.event("warning", f"p2pswarm: warning: {message}", message=message)

    def error(self, message: str) -> None:
        if self.json_mode:
            self.event("error", message=message)
        self._write(sys.stderr, f"p2pswarm: error: {message}")

    def progress(self, line: str) -> None:
        """A progress bar redrawn in place; only on a terminal, never in JSON mode."""
        if not self.json_mode and sys.stderr.isatty():
            sys.stderr.write("\r\x1b[K" + line)
            sys.stderr.flush()

    def end_progress(self) -> None:
        if not self.json_mode and sys.stderr.isatty():
            sys.stderr.write("\n")
            sys.stderr.flush()

    @staticmethod
    def _write(stream: TextIO, line: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed pipe must not crash us
            stream.write(line + "\n")
            stream.flush()


class _OutputLogHandler(logging.Handler):
    """Library log records (a fallback port, a failed re-announce) become output lines."""

    def __init__(self, out: Output) -> None:
        super().__init__(logging.NOTSET)
        self._out = out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            return
        if record.levelno == logging.WARNING:
            self._out.warning(message)
        else:
            level = record.levelname.lower()
            self._out.event("log", f"p2pswarm: {level}: {message}", level=level, message=message)


def short_id(public_key: bytes) -> str:
    """The first 8 hex digits of a public key: how people tell peers apart on screen."""
    return public_key.hex()[:8]


# -- command-line values --------------------------------------------------------------------


def parse_topic(text: str) -> bytes:
    """A topic argument: 64 hex digits are the topic itself; any other text is hashed.

    A run of 32 or more hex digits that is not exactly 64 long is an error rather than a
    name: it is almost certainly a mistyped or truncated hex topic, and silently hashing it
    would put the user in an empty room. Short hex-looking names ("cafe", "2024") are names.
    """
    if not text:
        raise CommandError("the topic is empty", EXIT_USAGE)
    if _HEX.fullmatch(text):
        if len(text) == 2 * TOPIC_SIZE:
            return bytes.fromhex(text)
        if len(text) >= HEX_TOPIC_MIN_DIGITS:
            raise CommandError(
                f"topic looks like hex but has {len(text)} hex digits; a hex topic has "
                f"exactly {2 * TOPIC_SIZE} (anything else that is not hex is hashed as a name)",
                EXIT_USAGE,
            )
    if len(text.encode("utf-8", "surrogateescape")) > MAX_TOPIC_NAME_BYTES:
        raise CommandError(f"the topic name is longer than {MAX_TOPIC_NAME_BYTES} bytes", 2)
    return topic(text.encode("utf-8", "surrogateescape"))


def parse_peer_key(text: str) -> bytes:
    """A peer's public key: exactly 64 hex digits."""
    if len(text) != 64 or not _HEX.fullmatch(text):
        raise CommandError(
            f"a peer key is 64 hex digits (from 'p2pswarm keygen' or the peer's output), "
            f"got {text[:80]!r}",
            EXIT_USAGE,
        )
    return bytes.fromhex(text)


def bootstrap_argument(text: str) -> list[tuple[str, int]]:
    """argparse type for ``--bootstrap HOST:PORT[,HOST:PORT...]``."""
    try:
        return parse_bootstrap(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT[,HOST:PORT...], got {text!r}: {exc}"
        ) from None


def load_identity(path: Path | None, out: Output) -> KeyPair:
    """The key pair in ``--key FILE``; a new file when it does not exist; random when no
    option. A file that exists but cannot be read as a key is an error and stays as it is."""
    if path is None:
        return KeyPair.generate()
    if not path.exists() and not path.is_symlink():
        key_pair = KeyPair.generate()
        try:
            key_pair.save(path)
        except FileExistsError:
            pass  # created meanwhile by someone else: read theirs below
        except OSError as exc:
            raise CommandError(f"cannot create key file {path}: {exc.strerror or exc}") from None
        else:
            out.event(
                "key-created",
                f"created a new key in {path} (public key {key_pair.public_key.hex()})",
                file=str(path),
                public_key=key_pair.public_key.hex(),
            )
            return key_pair
    try:
        return KeyPair.load(path)
    except KeyFileError as exc:
        raise CommandError(str(exc)) from None


# -- the network ----------------------------------------------------------------------------


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Network:
    """Where a command's swarm discovers peers, as configured (for messages and status)."""

    def __init__(self, args: argparse.Namespace) -> None:
        listed: list[tuple[str, int]] = [a for group in args.bootstrap or () for a in group]
        if not listed:
            try:
                listed = bootstrap_from_env() or []
            except ValueError as exc:
                raise CommandError(str(exc), EXIT_USAGE) from None
        self.bootstrap = listed
        self.local_port: int | None = args.local_port
        if args.host is not None:
            self.host = args.host
        elif not listed or all(_loopback(h) for h, _ in listed):
            self.host = "127.0.0.1"
        else:
            self.host = "0.0.0.0"

    @property
    def local(self) -> bool:
        return not self.bootstrap

    def addresses(self) -> str:
        return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.bootstrap)

    def describe(self) -> str:
        return "the local network" if self.local else f"the DHT at {self.addresses()}"


@contextlib.asynccontextmanager
async def _open_backend(
    network: Network, tg: anyio.abc.TaskGroup, out: Output
) -> AsyncIterator[DiscoveryBackend]:
    if network.local:
        try:
            local = LocalDiscovery(port=network.local_port)
            await local.__aenter__()
        except OSError as exc:
            raise CommandError(f"cannot start the local network: {exc}") from None
        try:
            yield local
        finally:
            await local.aclose()  # shields its own cleanup; task groups exit where entered
        return
    node = DHTNode(bootstrap=network.bootstrap, host=network.host, port=0, ephemeral=True)
    try:
        # Bounded: a bootstrap node that never answers costs one request budget (~2 s).
        await node.__aenter__()
    except OSError as exc:
        raise CommandError(f"cannot open a DHT socket on {network.host}: {exc}") from None
    try:
        if len(node.routing_table) == 0:
            out.warning(
                f"no DHT bootstrap node answered ({network.addresses()}) within "
                f"{node.request_budget:g} s; still trying in the background"
            )
            tg.start_soon(_keep_bootstrapping, node, out)
        yield node
    finally:
        await node.__aexit__(None, None, None)


async def _keep_bootstrapping(node: DHTNode, out: Output) -> None:
    """Retry the bootstrap with growing pauses until a node answers, then say so."""
    pause = 1.0
    while len(node.routing_table) == 0 and not node.closed:
        await anyio.sleep(pause)
        pause = min(pause * 2, 30.0)
        with contextlib.suppress(Exception):
            await node.bootstrap()
    if not node.closed:
        out.event(
            "dht-reached",
            f"reached the DHT ({len(node.routing_table)} nodes)",
            nodes=len(node.routing_table),
        )


@contextlib.asynccontextmanager
async def open_swarm(
    args: argparse.Namespace, out: Output, key_pair: KeyPair, **options: Any
) -> AsyncIterator[Swarm]:
    """A running swarm on the configured network (local by default), closed on exit.

    Plain nested ``async with`` blocks rather than an ``AsyncExitStack``: unwinding a
    cancellation through an exit stack can chain an exception to itself, and Python's
    exit-stack context fixing then loops forever.
    """
    network = Network(args)
    async with anyio.create_task_group() as tg, _open_backend(network, tg, out) as backend:
        swarm = Swarm(
            key_pair=key_pair,
            dht=backend,
            host=network.host,
            backoffs=CLI_BACKOFFS,
            jitter=0.1,
            **options,
        )
        try:
            await swarm.__aenter__()
        except OSError as exc:
            raise CommandError(f"cannot listen on {network.host}: {exc.strerror or exc}") from None
        try:
            if isinstance(backend, LocalDiscovery):
                backend.on_network_change(swarm.network_changed)
                where = f"local network on 127.0.0.1:{backend.network.port}"
                role = "bootstrap" if backend.network.is_bootstrap else "member"
            else:
                where, role = network.describe(), "client"
            out.event(
                "ready",
                f"p2pswarm {short_id(key_pair.public_key)} on {where} "
                f"(public key {key_pair.public_key.hex()})",
                public_key=key_pair.public_key.hex(),
                network=where,
                role=role,
                port=swarm.port,
            )
            yield swarm
        finally:
            await swarm.__aexit__(None, None, None)
            tg.cancel_scope.cancel()


# -- running a command ----------------------------------------------------------------------


def run_command(
    args: argparse.Namespace,
    body: Callable[[argparse.Namespace, Output], Awaitable[int]],
    *,
    events: TextIO | None = None,
) -> int:
    """Run ``body`` on anyio with clean exits: SIGINT/SIGTERM end it quietly (status 0),
    a :class:`CommandError` becomes one line and its status."""
    out = Output(json_mode=bool(getattr(args, "json", False)), events=events)
    handler = _OutputLogHandler(out)
    library_logger = logging.getLogger("p2pswarm")
    library_logger.addHandler(handler)
    library_logger.propagate = False

    async def main() -> int:
        # The first signal asks the command to stop: it closes its swarm normally (topics
        # unannounced, connections closed). A second one exits the process at once.
        out.stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            result = [EXIT_OK]

            async def run_body() -> None:
                result[0] = await body(args, out)
                tg.cancel_scope.cancel()

            async def watch_signals() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        if out.stop.is_set():
                            # A second signal: the user wants out now, cleanup or not.
                            out.event("killed", "stopped without cleaning up")
                            os._exit(130)
                        out.event("stopping", "stopping (again to stop at once)")
                        out.stop.set()

            tg.start_soon(watch_signals)
            tg.start_soon(run_body)
        return result[0]

    try:
        return anyio.run(main, backend=os.environ.get("P2PSWARM_ASYNC_BACKEND", "asyncio"))
    except CommandError as exc:
        out.error(str(exc))
        return exc.status
    except BaseExceptionGroup as group:
        errors = _flatten(group)
        first = next((e for e in errors if isinstance(e, CommandError)), None)
        if first is not None:
            out.error(str(first))
            return first.status
        raise
    finally:
        library_logger.removeHandler(handler)


def _flatten(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(_flatten(exc))
        else:
            found.append(exc)
    return found


async def wait_any(*events: anyio.Event) -> None:
    """Return as soon as one of ``events`` is set."""
    async with anyio.create_task_group() as tg:

        async def wait(event: anyio.Event) -> None:
            await event.wait()
            tg.cancel_scope.cancel()

        for event in events:
            tg.start_soon(wait, event)


# -- stdin and stdout -----------------------------------------------------------------------


def stdin_chunks(max_chunk: int = 65536) -> MemoryObjectReceiveStream[bytes]:
    """Raw stdin as a stream of chunks that ends at EOF, read by a daemon thread.

    A daemon thread, because a read blocked on a terminal cannot be cancelled and must not
    keep the process alive at exit. The small buffer gives back-pressure: nothing more is
    read than the consumer takes.
    """
    send, receive = anyio.create_memory_object_stream[bytes](4)
    token = anyio.lowlevel.current_token()
    fd = sys.stdin.fileno() if sys.stdin is not None else -1

    def pump() -> None:
        try:
            while fd >= 0:
                try:
                    chunk = os.read(fd, max_chunk)
                except OSError:
                    break
                if not chunk:
                    break
                anyio.from_thread.run(send.send, chunk, token=token)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, RuntimeError):
            pass  # the consumer is gone or the event loop has ended
        finally:
            with contextlib.suppress(RuntimeError):
                anyio.from_thread.run_sync(send.close, token=token)

    threading.Thread(target=pump, name="p2pswarm-stdin", daemon=True).start()
    return receive


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


async def write_stdout(data: bytes) -> None:
    """Write raw bytes to stdout without blocking the event loop on a slow reader."""
    await anyio.to_thread.run_sync(_write_all, sys.stdout.fileno(), data)
