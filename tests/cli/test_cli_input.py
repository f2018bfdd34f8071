"""Bad input at the command line: one clear line and a non-zero status, nothing damaged.

Every command here is a real subprocess (``python -m p2pswarm``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from p2pswarm import KeyPair
from p2pswarm.commands._common import CommandError, parse_peer_key, parse_topic
from p2pswarm.keys import topic

from .proc import Runner

pytestmark = pytest.mark.anyio

HEX64 = "ab" * 32


# -- in-process: topics and keys as the command line reads them -----------------------------


def test_topic_text_is_hashed_and_64_hex_digits_are_taken_as_is() -> None:
    assert parse_topic("demo") == topic("demo")
    assert parse_topic("cafe") == topic("cafe")  # short hex-looking names are names
    assert parse_topic(HEX64) == bytes.fromhex(HEX64)
    assert parse_topic(HEX64.upper()) == bytes.fromhex(HEX64)
    assert parse_topic("x" * 64) == topic("x" * 64)


@pytest.mark.parametrize("text", ["", "ab" * 16, "ab" * 31 + "a", "ab" * 33])
def test_bad_topics_are_usage_errors(text: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_topic(text)
    assert info.value.status == 2


def test_peer_keys_are_64_hex_digits() -> None:
    assert parse_peer_key(HEX64) == bytes.fromhex(HEX64)
    for bad in ("", HEX64[:-2], HEX64 + "00", "zz" * 32):
        with pytest.raises(CommandError):
            parse_peer_key(bad)


# -- subprocesses ---------------------------------------------------------------------------


async def test_keygen_writes_a_private_key_file_and_never_overwrites(
    cli: Runner, tmp_path: Path
) -> None:
    path = tmp_path / "me.key"
    first = await cli.run("keygen", "--out", str(path))
    assert first.process.returncode == 0
    public = first.out.strip()
    assert KeyPair.load(path).public_key.hex() == public
    assert path.stat().st_mode & 0o777 == 0o600
    before = path.read_bytes()
    again = await cli.run("keygen", "--out", str(path))
    assert again.process.returncode == 1
    assert "already exists" in again.err
    assert path.read_bytes() == before


async def test_keygen_without_out_prints_a_loadable_key_file(cli: Runner, tmp_path: Path) -> None:
    proc = await cli.run("keygen", "--json")
    assert proc.process.returncode == 0
    lines = proc.out.strip().splitlines()
    event = json.loads(lines[-1])
    assert event["event"] == "keygen"
    document = "\n".join(lines[:-1])
    (tmp_path / "k").write_text(document)
    assert KeyPair.load(tmp_path / "k").public_key.hex() == event["public_key"]


async def test_key_option_creates_a_missing_file_then_reuses_it(
    cli: Runner, tmp_path: Path
) -> None:
    path = tmp_path / "id.key"
    # A chat whose stdin is already closed: it starts, creates the key, and leaves.
    chat = await cli.run("chat", "lonely-room", "--key", str(path), "--json")
    assert chat.process.returncode == 0, chat.err
    events = [json.loads(line) for line in chat.out.splitlines()]
    created = [e for e in events if e["event"] == "key-created"]
    ready = next(e for e in events if e["event"] == "ready")
    assert created and created[0]["public_key"] == ready["public_key"]
    again = await cli.run("chat", "lonely-room", "--key", str(path), "--json")
    ready_again = next(json.loads(line) for line in again.out.splitlines() if '"ready"' in line)
    assert ready_again["public_key"] == ready["public_key"]
    assert not any('"key-created"' in line for line in again.out.splitlines())


@pytest.mark.parametrize("content", [b"garbage\n", b"{}", b'{"type": "p2pswarm-keypair"}', b""])
async def test_corrupt_key_file_is_a_clear_error_and_stays_untouched(
    cli: Runner, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    proc = await cli.run("chat", "t", "--key", str(path))
    assert proc.process.returncode == 1
    lines = proc.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("p2pswarm: error: ")
    assert "key file" in lines[0]
    assert path.read_bytes() == content


async def test_unreadable_key_file_is_a_clear_error(cli: Runner, tmp_path: Path) -> None:
    path = tmp_path / "dir.key"
    path.mkdir()  # a directory cannot be read as a file, even by root
    proc = await cli.run("join", "t", "--key", str(path))
    assert proc.process.returncode == 1
    assert "cannot read key file" in proc.err
    if os.geteuid() != 0:
        locked = tmp_path / "locked.key"
        KeyPair.generate().save(locked)
        locked.chmod(0)
        proc = await cli.run("join", "t", "--key", str(locked))
        assert proc.process.returncode == 1 and "cannot read key file" in proc.err


async def test_wrong_length_hex_topic_is_a_usage_error(cli: Runner) -> None:
    proc = await cli.run("join", "ab" * 20)
    assert proc.process.returncode == 2
    assert "40 hex digits" in proc.err and "exactly 64" in proc.err
    assert proc.err.count("\n") == 1


async def test_bad_bootstrap_option_and_environment(cli: Runner) -> None:
    proc = await cli.run("join", "t", "--bootstrap", "nowhere")
    assert proc.process.returncode == 2 and "HOST:PORT" in proc.err
    proc = await cli.run("join", "t", env=cli.env(P2PSWARM_BOOTSTRAP="no-port-here"))
    assert proc.process.returncode == 2 and "P2PSWARM_BOOTSTRAP" in proc.err


async def test_bad_peer_key_for_send(cli: Runner, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    proc = await cli.run("send", str(tmp_path / "f"), "--peer", "1234")
    assert proc.process.returncode == 2 and "64 hex digits" in proc.err


async def test_send_of_a_missing_file(cli: Runner, tmp_path: Path) -> None:
    proc = await cli.run("send", str(tmp_path / "nope"), "--peer", HEX64)
    assert proc.process.returncode == 1 and "cannot read" in proc.err


async def test_dht_node_port_in_use_by_something_else(cli: Runner) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", cli.local_port))
        proc = await cli.run("dht-node", "--port", str(cli.local_port))
    assert proc.process.returncode == 1
    assert f"port {cli.local_port} is in use" in proc.err


async def test_dht_node_port_in_use_by_a_p2pswarm_node(cli: Runner) -> None:
    first = await cli.start("dht-node", stdin=subprocess.DEVNULL)
    await first.wait_for(rf"listening on 127\.0\.0\.1:{cli.local_port}")
    second = await cli.run("dht-node")
    assert second.process.returncode == 1
    assert "a p2pswarm node already serves" in second.err


async def test_stdin_closed_at_once_leaves_chat_cleanly(cli: Runner) -> None:
    proc = await cli.run("chat", "quiet-room")
    assert proc.process.returncode == 0
    assert "leaving the chat" in proc.err
    assert "Traceback" not in proc.err


async def test_help_for_every_command(cli: Runner) -> None:
    top = await cli.run("--help")
    assert top.process.returncode == 0
    for command in ("keygen", "join", "chat", "send", "receive", "dht-node", "status"):
        assert command in top.out
        sub = await cli.run(command, "--help")
        assert sub.process.returncode == 0 and "--json" in sub.out and "--key" in sub.out
    missing = await cli.run()
    assert missing.process.returncode == 2


async def test_console_script_is_installed(cli: Runner, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "p2pswarm"
    if not script.exists():
        pytest.skip("the p2pswarm console script is not installed in this environment")
    proc = await cli.start(
        "keygen", "--out", str(tmp_path / "k"), stdin=subprocess.DEVNULL, argv0=script
    )
    assert await proc.wait_exit() == 0
    assert KeyPair.load(tmp_path / "k").public_key.hex() == proc.out.strip()
