"""The peer-program contract: how the lab drives a HyperDHT implementation in a NATed host.

A peer program is any command (``argv`` prefix) that takes these arguments::

    --role=server --bootstrap=H:P[,H:P...] --seed=HEX32 --timeout-ms=N
    --role=client --bootstrap=H:P[,H:P...] --key=HEX32  --timeout-ms=N

and prints JSON lines on stdout (anything else on stdout that does not start with ``{`` is
ignored; stderr is kept for the report):

- server: once it is announced, ``{"event": "listening", "publicKey": HEX32}``; then it accepts
  connections on the key pair made from the 32-byte seed (``DHT.keyPair(seed)``), echoes every
  byte it reads, and may print ``{"event": "connection", "remote": {"host", "port"}}``. It runs
  until the lab kills it (SIGKILL of its process group) or ``--timeout-ms`` passes.
- client: after bootstrapping, connects by key, writes ``natlab-ping``, waits for the same bytes
  back, prints one ``{"event": "result", "connected": true, "ms": N, "remote": {"host",
  "port"}}`` (``ms`` from the connect call to the echo; ``remote`` the UDX stream's peer
  address) or ``{"event": "result", "connected": false, "error": "CODE"}``, and exits.
- either may print ``{"event": "error", "message": "..."}`` and exit non-zero.
- extra keys (``firewalled``, ``randomized``, ``punches``) are copied into the report.

``tests/natlab/js_peer.js`` is the JS HyperDHT implementation; a Python one plugs in by the
same contract (``--server-program`` / ``--client-program`` of the matrix runner).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass

from tests.natlab.lab import HERE

__all__ = ("JS_PEER", "JS_SKIP_REASON", "NODE_ENV", "PY_PEER", "PeerProgram")

NODE_MODULES = HERE.parent / "interop" / "node_modules"
NODE = shutil.which("node")

#: Why the JS peer cannot run here, or None when it can.
JS_SKIP_REASON: str | None = None
if NODE is None:
    JS_SKIP_REASON = "node is not installed: the lab's JS peer needs it"
elif not (NODE_MODULES / "hyperdht").is_dir():
    JS_SKIP_REASON = f"the JS fixture is not installed: run `npm ci` in {NODE_MODULES.parent}"

#: The environment node runs with: the pinned packages of tests/interop.
NODE_ENV = {**os.environ, "NODE_PATH": str(NODE_MODULES)}


@dataclass(frozen=True)
class PeerProgram:
    """A command implementing the contract above, and a name for the report."""

    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, name: str, command: str) -> PeerProgram:
        """A program from a shell-like command line (``name`` labels it in the report)."""
        return cls(name, tuple(shlex.split(command)))

    def environ(self) -> dict[str, str]:
        return {**NODE_ENV, **dict(self.env)}


JS_PEER = PeerProgram("js", (NODE or "node", str(HERE / "js_peer.js")))

#: p2pswarm's HyperDHT (``tests/natlab/py_peer.py``), run by this interpreter.
PY_PEER = PeerProgram(
    "py",
    (sys.executable, "-m", "tests.natlab.py_peer"),
    (("PYTHONPATH", str(HERE.parent.parent)),),
)
