"""Running ``p2pswarm`` commands (and example scripts) as real subprocesses in tests.

Each test gets a :class:`Runner` bound to its own local-network port (never 49737): every
process it starts sees ``P2PSWARM_LOCAL_PORT`` set to that port and no
``P2PSWARM_BOOTSTRAP``, and every one is killed when the runner closes. Output is collected
by reader tasks; :meth:`Proc.wait_for` waits for a pattern to appear, with a deadline only
as a safety bound (no sleeps).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
from anyio.abc import Process

#: Safety bound for one wait on a subprocess; normally met in well under a second.
WAIT = 30.0
REPO = Path(__file__).resolve().parents[2]


class Proc:
    """One running command: its output so far, and ways to wait on it."""

    def __init__(self, process: Process, argv: Sequence[str]) -> None:
        self.process = process
        self.argv = list(argv)
        self.stdout = bytearray()
        self.stderr = bytearray()
        self._changed = anyio.Event()
        self._streams_done = 0

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _collect(self, stream: anyio.abc.ByteReceiveStream | None, into: bytearray) -> None:
        if stream is None:
            return
        try:
            async for chunk in stream:
                into += chunk
                self._notify()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        finally:
            self._streams_done += 1
            self._notify()

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    async def wait_for(
        self, pattern: str, *, stream: str = "stderr", limit: float = WAIT
    ) -> re.Match[str]:
        """Wait until ``pattern`` (a regex) appears on ``stream``; return the match."""
        regex = re.compile(pattern)
        try:
            with anyio.fail_after(limit):
                while True:
                    text = self.err if stream == "stderr" else self.out
                    match = regex.search(text)
                    if match:
                        return match
                    if self._streams_done == 2 and self.process.returncode is not None:
                        raise AssertionError("process exited")
                    await self._changed.wait()
        except (TimeoutError, AssertionError):
            raise AssertionError(
                f"{pattern!r} never appeared on {stream} of {self.argv}\n"
                f"--- stdout ---\n{self.out}\n--- stderr ---\n{self.err}"
            ) from None

    async def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(data)

    async def close_stdin(self) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.aclose()

    async def wait_exit(self, limit: float = WAIT) -> int:
        try:
            with anyio.fail_after(limit):
                code = await self.process.wait()
                while self._streams_done < 2:
                    await self._changed.wait()
                return code
        except TimeoutError:
            raise AssertionError(
                f"{self.argv} did not exit\n--- stdout ---\n{self.out}\n--- stderr ---\n{self.err}"
            ) from None

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


class Runner:
    """Starts commands for one test on one private local network; kills them at the end."""

    def __init__(self, tg: anyio.abc.TaskGroup, local_port: int) -> None:
        self._tg = tg
        self.local_port = local_port
        self.procs: list[Proc] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("P2PSWARM_")}
        env["P2PSWARM_LOCAL_PORT"] = str(self.local_port)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra)
        return env

    async def start(
        self,
        *args: str,
        stdin: int | None = subprocess.PIPE,
        script: Path | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        argv0: Path | None = None,
    ) -> Proc:
        """``python -m p2pswarm ARGS``, ``python SCRIPT ARGS`` or ``ARGV0 ARGS``, with pipes."""
        if argv0 is not None:
            prefix = [str(argv0)]
        elif script is not None:
            prefix = [sys.executable, str(script)]
        else:
            prefix = [sys.executable, "-m", "p2pswarm"]
        argv = [*prefix, *args]
        process = await anyio.open_process(
            argv,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env or self.env(),
        )
        proc = Proc(process, argv)
        self.procs.append(proc)
        self._tg.start_soon(proc._collect, process.stdout, proc.stdout)
        self._tg.start_soon(proc._collect, process.stderr, proc.stderr)
        return proc

    async def run(self, *args: str, stdin: int | None = subprocess.DEVNULL, **kw: object) -> Proc:
        """Start a command and wait for it to exit."""
        proc = await self.start(*args, stdin=stdin, **kw)  # type: ignore[arg-type]
        await proc.wait_exit()
        return proc


@asynccontextmanager
async def runner(local_port: int) -> AsyncIterator[Runner]:
    async with anyio.create_task_group() as tg:
        run = Runner(tg, local_port)
        try:
            yield run
        finally:
            with anyio.CancelScope(shield=True):
                for proc in run.procs:
                    proc.kill()
                for proc in run.procs:
                    await proc.process.wait()
                    await proc.process.aclose()
            tg.cancel_scope.cancel()
