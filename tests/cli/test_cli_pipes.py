"""`p2pswarm join` pipe shapes: each finishes by itself (the rules are in commands/join.py).

Real subprocesses on the test's own local network; a terminal is a real pseudo-terminal.
"""

from __future__ import annotations

import os
import pty
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .proc import Runner

pytestmark = pytest.mark.anyio


@contextmanager
def terminal() -> Iterator[tuple[int, int]]:
    """A pseudo-terminal: (the side a person types into, the side a command reads)."""
    typing, reading = pty.openpty()
    try:
        yield typing, reading
    finally:
        os.close(typing)
        os.close(reading)


async def test_file_to_a_terminal_reader_both_exit(cli: Runner, tmp_path: Path) -> None:
    """``join t < file`` and ``join t > out`` typed in a terminal (issue 15): the remote's
    end ends the terminal side, and both exit once the file has arrived."""
    data = os.urandom(300_000)
    (tmp_path / "file").write_bytes(data)
    source = os.open(tmp_path / "file", os.O_RDONLY)
    try:
        with terminal() as (_, tty):
            receiver = await cli.start("join", "beam", stdin=tty)
            await receiver.wait_for("joined topic")
            sender = await cli.start("join", "beam", stdin=source)
            assert await sender.wait_exit() == 0, sender.err
            assert await receiver.wait_exit() == 0, receiver.err
    finally:
        os.close(source)
    assert bytes(receiver.stdout) == data
    assert "finished sending" in receiver.err


async def test_two_terminals_one_end_ends_both(cli: Runner) -> None:
    with terminal() as (typing_a, tty_a), terminal() as (_, tty_b):
        a = await cli.start("join", "talk", stdin=tty_a)
        await a.wait_for("joined topic")
        b = await cli.start("join", "talk", stdin=tty_b)
        await a.wait_for("connected")
        os.write(typing_a, b"hello\n")
        await b.wait_for("hello\n", stream="stdout")
        os.write(typing_a, b"\x04")  # Ctrl-D at the start of a line: the end of stdin
        assert await a.wait_exit() == 0, a.err
        assert await b.wait_exit() == 0, b.err
    assert b.out == "hello\n"


async def test_a_pipe_reader_keeps_sending_until_its_own_end(cli: Runner) -> None:
    """Stdin a pipe: the remote's end does not cut ours short; the reader still sends
    everything, then both exit."""
    sender = await cli.start("join", "reply", stdin=subprocess.PIPE)
    await sender.wait_for("joined topic")
    replier = await cli.start("join", "reply", stdin=subprocess.PIPE)
    await sender.wait_for("connected")
    await sender.send(b"question\n")
    await sender.close_stdin()
    await replier.wait_for("question\n", stream="stdout")
    await replier.wait_for("finished sending")
    await replier.send(b"answer after the question ended\n")
    await sender.wait_for("answer after the question ended\n", stream="stdout")
    await replier.close_stdin()
    assert await sender.wait_exit() == 0, sender.err
    assert await replier.wait_exit() == 0, replier.err


async def test_devnull_reader_receives_a_file(cli: Runner, tmp_path: Path) -> None:
    data = os.urandom(100_000)
    (tmp_path / "file").write_bytes(data)
    source = os.open(tmp_path / "file", os.O_RDONLY)
    try:
        receiver = await cli.start("join", "backup", stdin=subprocess.DEVNULL)
        await receiver.wait_for("joined topic")
        sender = await cli.start("join", "backup", stdin=source)
        assert await sender.wait_exit() == 0, sender.err
        assert await receiver.wait_exit() == 0, receiver.err
    finally:
        os.close(source)
    assert bytes(receiver.stdout) == data
