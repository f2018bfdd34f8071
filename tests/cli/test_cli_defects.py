"""Regression tests for the command-line defects of issue 15, each as a user met it.

In-process where the behaviour is a pure function (topics, the output's progress line),
real subprocesses otherwise.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from p2pswarm.commands._common import CommandError, Output, parse_topic
from p2pswarm.keys import topic

from .proc import Runner

pytestmark = pytest.mark.anyio

HEX64 = "ab" * 32


# -- topics: taken as hex, hashed as a name, or refused; never silently another room ---------


def test_0x_and_64_hex_digits_is_the_hex_topic() -> None:
    assert parse_topic("0x" + HEX64) == bytes.fromhex(HEX64)
    assert parse_topic("0X" + HEX64.upper()) == bytes.fromhex(HEX64)


@pytest.mark.parametrize(
    "text",
    [
        " ",
        "   \t ",
        HEX64 + " ",
        " " + HEX64,
        HEX64[:30] + " " + HEX64[30:],
        "0x" + HEX64[:-2],
        "0x" + HEX64 + "00",
        "0x " + HEX64,
        "0xcafe",
    ],
)
def test_topics_that_would_be_another_room_are_refused(text: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_topic(text)
    assert info.value.status == 2


def test_names_with_spaces_or_an_0x_start_stay_names() -> None:
    assert parse_topic("my room") == topic("my room")
    assert parse_topic("0xford street") == topic("0xford street")
    assert parse_topic("dead beef") == topic("dead beef")  # too short to be a hex topic


# -- output: a warning goes over the progress bar, not glued onto it -------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@contextlib.contextmanager
def _stderr_terminal() -> Iterator[_Terminal]:
    terminal, saved = _Terminal(), sys.stderr
    sys.stderr = terminal
    try:
        yield terminal
    finally:
        sys.stderr = saved


def test_a_warning_during_progress_starts_on_its_own_line() -> None:
    with _stderr_terminal() as terminal:
        out = Output(json_mode=False)
        out.progress("sending f [####] 40%")
        out.warning("the network changed")
        out.progress("sending f [#####] 50%")
        out.end_progress()
        out.event("done", "sent f")
    text = terminal.getvalue()
    lines = text.split("\n")
    warning = next(line for line in lines if "the network changed" in line)
    # The bar's line was cleared before the warning: only the escape remains before it.
    assert warning.split("\r\x1b[K")[-1] == "p2pswarm: warning: the network changed"
    assert lines[-2].endswith("sent f") and "\r" not in lines[-2]
    assert text.count("50%") == 1 and "50%\n" in text


# -- argparse errors: one line, status 2 ---------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ("join",),
        ("nonsense",),
        ("receive", "--max-size", "-5"),
        ("receive", "--max-size", "lots"),
        ("join", "t", "--local-port", "x"),
    ],
)
async def test_a_bad_command_line_is_one_line(cli: Runner, argv: tuple[str, ...]) -> None:
    proc = await cli.run(*argv)
    assert proc.process.returncode == 2
    lines = proc.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("p2pswarm: error: "), proc.err
    assert "usage:" not in proc.err


async def test_a_negative_max_size_is_refused(cli: Runner) -> None:
    proc = await cli.run("receive", "--max-size", "-5")
    assert proc.process.returncode == 2 and "--max-size" in proc.err


# -- Ctrl-C: the command cleans up, then says it did not finish ----------------------------


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_a_signal_exits_non_zero_after_cleaning_up(
    cli: Runner, signum: signal.Signals, status: int
) -> None:
    proc = await cli.start("join", "interrupted")
    await proc.wait_for("joined topic")
    proc.process.send_signal(signum)
    assert await proc.wait_exit() == status
    assert "stopping" in proc.err and "Traceback" not in proc.err


# -- an unreachable bootstrap: one warning, no false "joined" -------------------------------


async def test_an_unreachable_bootstrap_is_one_clear_warning(cli: Runner) -> None:
    with contextlib.closing(_silent_udp_port()) as silent:
        port = silent.getsockname()[1]
        proc = await cli.start("join", "t", "--bootstrap", f"127.0.0.1:{port}")
        await proc.wait_for("as soon as the DHT answers")
        proc.process.send_signal(signal.SIGINT)
        await proc.wait_exit()
    warnings = [line for line in proc.err.splitlines() if "warning" in line]
    assert len(warnings) == 1, proc.err
    assert f"127.0.0.1:{port}" in warnings[0] and "[(" not in warnings[0]
    assert "not reached yet" in proc.err
    assert "joined topic" not in proc.err


def _silent_udp_port() -> socket.socket:
    """A bound UDP port on 127.0.0.1 that never answers: a bootstrap node that is down."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


# -- send / receive ------------------------------------------------------------------------


async def test_the_printed_send_line_names_the_receivers_bootstrap(
    cli: Runner, tmp_path: Path
) -> None:
    node = await cli.start("dht-node", "--port", "0", stdin=subprocess.DEVNULL)
    address = (await node.wait_for(r"listening on (127\.0\.0\.1:\d+)"))[1]
    inbox = tmp_path / "in"
    inbox.mkdir()
    receiver = await cli.start("receive", "--out-dir", str(inbox), "--bootstrap", address)
    line = (await receiver.wait_for(r"p2pswarm send FILE --peer [0-9a-f]{64}.*"))[0]
    assert line.endswith(f"--bootstrap {address}")
    # Run as printed (the file put in), from a process with no network settings of its own.
    (tmp_path / "payload").write_bytes(b"over the DHT")
    argv = line.split()[1:]
    argv[argv.index("FILE")] = str(tmp_path / "payload")
    inbox_copy = inbox / "payload"
    sender = await cli.run(*argv, env=cli.env(P2PSWARM_LOCAL_PORT=str(cli.local_port + 50)))
    assert sender.process.returncode == 0, sender.err
    assert await receiver.wait_exit() == 0
    assert inbox_copy.read_bytes() == b"over the DHT"


async def test_a_sender_that_finds_nobody_says_so(cli: Runner, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    sender = await cli.start("send", str(tmp_path / "f"), "--peer", HEX64)
    hint = (await sender.wait_for(r".*was not found on the local network.*"))[0]
    assert "p2pswarm receive" in hint and "--bootstrap" in hint
    sender.process.send_signal(signal.SIGINT)
    assert await sender.wait_exit() == 130


@contextlib.contextmanager
def _read_only_directory(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody can write, root included (a read-only mount when root)."""
    target = tmp_path / "readonly"
    target.mkdir()
    if os.geteuid() != 0:
        target.chmod(0o555)
        try:
            yield target
        finally:
            target.chmod(0o755)
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "p2pswarm-test", str(target)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot make a read-only mount as root: {mounted.stderr.decode().strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=False)


async def test_receiving_into_an_unwritable_directory_fails_on_both_sides(
    cli: Runner, tmp_path: Path
) -> None:
    (tmp_path / "f.bin").write_bytes(os.urandom(10_000))
    with _read_only_directory(tmp_path) as inbox:
        receiver = await cli.start("receive", "--out-dir", str(inbox))
        public = (await receiver.wait_for(r"--peer ([0-9a-f]{64})"))[1]
        sender = await cli.start("send", str(tmp_path / "f.bin"), "--peer", public)
        assert await receiver.wait_exit() == 1
        assert await sender.wait_exit() == 1
    assert f"cannot write into {inbox}" in receiver.err
    assert "Read-only file system" in receiver.err or "Permission denied" in receiver.err
    assert f"cannot write into {inbox}" in sender.err and "refused f.bin" in sender.err
    assert "resuming" not in sender.err and "dropped" not in receiver.err


async def test_a_peer_gone_mid_frame_is_a_lost_connection_not_a_protocol_breach(
    anyio_backend: str,
) -> None:
    """A sender killed while writing a frame leaves half a secret-stream frame and an end:
    the transfer reads that as a lost connection (and resumes), never as a breach."""
    from p2pswarm.commands.transfer import _next_message
    from p2pswarm.commands.transfer_protocol import FrameDecoder

    from ..test_connection import connected_pair

    async with connected_pair() as (initiator, responder):
        frame = initiator._machine.send(b"x" * 1000)
        await initiator._stream.send(frame[: len(frame) // 2])
        await initiator._stream.send_eof()
        with pytest.raises(anyio.BrokenResourceError) as info:
            await _next_message(responder, FrameDecoder(), [])
        assert "mid-frame" in str(info.value)
