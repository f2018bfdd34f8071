"""The CLI on a real local network: join, chat, send/receive, status, takeover, fallback.

Every command is a real subprocess on the test's own local-network port range.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from .ports import free_base_port
from .proc import Proc, Runner

pytestmark = pytest.mark.anyio

READY = r"p2pswarm ([0-9a-f]{8}) on "


async def _short_id(proc: Proc) -> str:
    return (await proc.wait_for(READY))[1]


# -- join -----------------------------------------------------------------------------------


async def test_echo_into_join_reaches_a_join_reader(cli: Runner) -> None:
    reader = await cli.start("join", "t", stdin=subprocess.PIPE)
    await reader.wait_for("joined topic")
    writer = await cli.start("join", "t")
    await writer.send(b"hi\n")
    await writer.close_stdin()
    await reader.wait_for("hi\n", stream="stdout")
    assert reader.out == "hi\n"
    # The reader's own stdin ends too: both directions are complete, both exit cleanly.
    await reader.close_stdin()
    assert await reader.wait_exit() == 0
    assert await writer.wait_exit() == 0
    assert writer.out == ""


async def test_join_is_binary_safe_both_ways_in_a_pipeline(cli: Runner, tmp_path: Path) -> None:
    left_data = os.urandom(200_000) + bytes(range(256))
    right_data = os.urandom(50_000)
    (tmp_path / "left").write_bytes(left_data)
    (tmp_path / "right").write_bytes(right_data)
    left_in = os.open(tmp_path / "left", os.O_RDONLY)
    right_in = os.open(tmp_path / "right", os.O_RDONLY)
    try:
        left = await cli.start("join", "pipe", stdin=left_in)
        right = await cli.start("join", "pipe", stdin=right_in)
        assert await left.wait_exit() == 0, left.err
        assert await right.wait_exit() == 0, right.err
    finally:
        os.close(left_in)
        os.close(right_in)
    assert bytes(right.stdout) == left_data
    assert bytes(left.stdout) == right_data


async def test_join_json_events_go_to_stderr(cli: Runner) -> None:
    a = await cli.start("join", "j", "--json", stdin=subprocess.DEVNULL)
    b = await cli.start("join", "j", "--json")
    await b.send(b"\x00\x01payload")
    await b.close_stdin()
    assert await a.wait_exit() == 0 and await b.wait_exit() == 0
    assert bytes(a.stdout) == b"\x00\x01payload"
    events = [json.loads(line) for line in a.err.splitlines()]
    # A warning may come first (e.g. the private local port turned out to be taken on a busy
    # machine and the network fell back to the next one, saying so); then ready, join, leave.
    kinds = [e["event"] for e in events if e["event"] != "warning"]
    assert kinds[0] == "ready" and "join" in kinds and "leave" in kinds
    ready_b = next(json.loads(x) for x in b.err.splitlines() if '"ready"' in x)
    assert next(e for e in events if e["event"] == "join")["peer"] == ready_b["public_key"]


# -- chat -----------------------------------------------------------------------------------


async def test_two_chats_exchange_lines_with_short_ids(cli: Runner) -> None:
    alice = await cli.start("chat", "demo")
    bob = await cli.start("chat", "demo", env=cli.env(P2PSWARM_ASYNC_BACKEND="trio"))
    a_id, b_id = await _short_id(alice), await _short_id(bob)
    await alice.wait_for(rf"\* {b_id} joined")
    await bob.wait_for(rf"\* {a_id} joined")
    await alice.send(b"hello from alice\n")
    await bob.wait_for(rf"\[{a_id}\] hello from alice\n", stream="stdout")
    await bob.send("ciao \x1b[31m☃\n".encode())
    match = await alice.wait_for(rf"\[{b_id}\] ciao (.*)\n", stream="stdout")
    assert match[1] == "\\x1b[31m☃"  # a peer's control characters are shown escaped
    await bob.close_stdin()
    assert await bob.wait_exit() == 0
    await alice.wait_for(rf"\* {b_id} left")
    await alice.close_stdin()
    assert await alice.wait_exit() == 0


async def test_chat_json_messages(cli: Runner) -> None:
    a = await cli.start("chat", "json-room", "--json")
    b = await cli.start("chat", "json-room", "--json")
    await a.wait_for(r'"event":"join"', stream="stdout")
    await b.wait_for(r'"event":"join"', stream="stdout")
    await a.send(b"structured\n")
    await b.wait_for(r'"event":"message"', stream="stdout")
    message = next(json.loads(line) for line in b.out.splitlines() if '"event":"message"' in line)
    ready_a = next(json.loads(line) for line in a.out.splitlines() if '"ready"' in line)
    assert message["text"] == "structured" and message["peer"] == ready_a["public_key"]


# -- send / receive -------------------------------------------------------------------------


async def test_file_transfer_survives_a_dropped_connection(cli: Runner, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 123)
    source = tmp_path / "payload.bin"
    source.write_bytes(data)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    receiver = await cli.start(
        "receive", "--key", str(tmp_path / "r.key"), "--out-dir", str(inbox), "--json"
    )
    ready = await receiver.wait_for(
        r'"event":"receiving","time":[0-9.]+,"public_key":"(\w+)"', stream="stdout"
    )
    sender = await cli.start(
        "send", str(source), "--peer", ready[1], "--drop-after", "1000000", "--json"
    )
    assert await sender.wait_exit() == 0, sender.err
    assert await receiver.wait_exit() == 0, receiver.err
    sent = [json.loads(line) for line in sender.out.splitlines()]
    kinds = [e["event"] for e in sent]
    assert "test-drop" in kinds and "resume" in kinds
    resume = next(e for e in sent if e["event"] == "resume")
    assert 0 < resume["offset"] < len(data)
    done = next(e for e in sent if e["event"] == "done")
    assert done["hash"] == hashlib.blake2b(data, digest_size=32).hexdigest()
    assert (inbox / "payload.bin").read_bytes() == data
    assert [p.name for p in inbox.iterdir()] == ["payload.bin"]  # no part file left


async def test_transfer_resumes_after_the_receiver_restarts(cli: Runner, tmp_path: Path) -> None:
    """Kill the receiving process mid-file; a new ``receive`` picks up the part file."""
    data = os.urandom(2 * 1024 * 1024)
    source = tmp_path / "f.bin"
    source.write_bytes(data)
    inbox = tmp_path / "in"
    inbox.mkdir()
    key = tmp_path / "r.key"
    # A partial file from an earlier attempt: the first 700000 bytes.
    digest = hashlib.blake2b(data, digest_size=32).hexdigest()
    (inbox / f".f.bin.{digest[:16]}.part").write_bytes(data[:700_000])
    receiver = await cli.start("receive", "--key", str(key), "--out-dir", str(inbox))
    public = (await receiver.wait_for(r"--peer ([0-9a-f]{64})"))[1]
    sender = await cli.start("send", str(source), "--peer", public)
    assert await sender.wait_exit() == 0, sender.err
    assert "resuming f.bin at 700000 of" in sender.err
    assert await receiver.wait_exit() == 0
    assert (inbox / "f.bin").read_bytes() == data


async def test_receive_refuses_to_replace_a_different_file(cli: Runner, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"new content")
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "a.txt").write_bytes(b"old content")
    receiver = await cli.start("receive", "--out-dir", str(inbox))
    public = (await receiver.wait_for(r"--peer ([0-9a-f]{64})"))[1]
    sender = await cli.run("send", str(tmp_path / "a.txt"), "--peer", public)
    assert sender.process.returncode == 1
    assert "refused a.txt" in sender.err and "already exists" in sender.err
    assert (inbox / "a.txt").read_bytes() == b"old content"


async def test_receive_refuses_a_file_over_its_size_limit(cli: Runner, tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(b"x" * 5000)
    inbox = tmp_path / "in"
    inbox.mkdir()
    receiver = await cli.start("receive", "--out-dir", str(inbox), "--max-size", "4096")
    public = (await receiver.wait_for(r"--peer ([0-9a-f]{64})"))[1]
    sender = await cli.run("send", str(tmp_path / "big.bin"), "--peer", public)
    assert sender.process.returncode == 1
    assert "more than the 4096 this receiver accepts" in sender.err
    assert list(inbox.iterdir()) == []


# -- status, networks -----------------------------------------------------------------------


async def test_status_shows_the_local_node_and_peers_on_a_topic(cli: Runner) -> None:
    empty = await cli.run("status")
    assert empty.process.returncode == 1 and "no local network" in empty.err
    member = await cli.start("chat", "lobby", "--json")
    ready = json.loads((await member.wait_for(r'\{"event":"ready".*\}', stream="stdout"))[0])
    await member.wait_for(r'"event":"joined"', stream="stdout")
    status = await cli.run("status", "lobby", "--json")
    assert status.process.returncode == 0, status.err
    events = [json.loads(line) for line in status.out.splitlines()]
    assert any(e["event"] == "local-node" and e["port"] == cli.local_port for e in events)
    topic_event = next(e for e in events if e["event"] == "topic")
    keys = [p["public_key"] for p in topic_event["peers"]]
    assert ready["public_key"] in keys


async def test_local_port_held_by_a_stranger_falls_back_and_says_so(cli: Runner) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        stranger.bind(("127.0.0.1", cli.local_port))
        first = await cli.start("chat", "fallback")
        await first.wait_for(rf"127\.0\.0\.1:{cli.local_port} is in use by something that is not")
        await first.wait_for(rf"local network on 127\.0\.0\.1:{cli.local_port + 1}")
        second = await cli.start("chat", "fallback")
        second_id = await _short_id(second)
        await first.wait_for(rf"\* {second_id} joined")


async def test_killing_the_local_bootstrap_keeps_the_network_working(cli: Runner) -> None:
    bootstrap = await cli.start("chat", "room-a")
    await bootstrap.wait_for(READY)
    survivor = await cli.start("chat", "room-b")
    survivor_id = await _short_id(survivor)
    bootstrap.kill()
    await bootstrap.process.wait()
    # A newcomer finds the survivor, whose record was lost with the old bootstrap: so the
    # survivor has re-announced after taking over (or following whoever did).
    newcomer = await cli.start("chat", "room-b")
    newcomer_id = await _short_id(newcomer)
    await newcomer.wait_for(rf"\* {survivor_id} joined")
    await survivor.wait_for(rf"\* {newcomer_id} joined")
    # And a brand-new pair on a fresh topic connects too.
    left = await cli.start("chat", "room-c")
    right = await cli.start("chat", "room-c")
    right_id = await _short_id(right)
    await left.wait_for(rf"\* {right_id} joined")
    await left.send(b"after the takeover\n")
    await right.wait_for(r"after the takeover", stream="stdout")


async def test_a_bootstrap_that_never_answers(cli: Runner) -> None:
    """A clear message after a bounded wait; the process keeps trying, and gets there."""
    port = free_base_port()
    proc = await cli.start("join", "t", "--bootstrap", f"127.0.0.1:{port}")
    await proc.wait_for(
        r"no DHT bootstrap node answered \(127\.0\.0\.1:\d+\) within [\d.]+ s; "
        r"still trying in the background"
    )
    assert proc.process.returncode is None
    node = await cli.start("dht-node", "--port", str(port), stdin=subprocess.DEVNULL)
    await node.wait_for(r"dht-node listening")
    await proc.wait_for(r"reached the DHT \(1 nodes\)")
    assert proc.process.returncode is None


async def test_a_private_network_through_dht_node(cli: Runner) -> None:
    """``dht-node`` plus ``--bootstrap``: the across-machines set-up, on loopback."""
    port = free_base_port()
    node = await cli.start("dht-node", "--port", str(port), stdin=subprocess.DEVNULL)
    await node.wait_for(r"dht-node listening")
    bootstrap = f"127.0.0.1:{port}"
    a = await cli.start("chat", "private", "--bootstrap", bootstrap)
    b = await cli.start("chat", "private", env=cli.env(P2PSWARM_BOOTSTRAP=bootstrap))
    b_id = await _short_id(b)
    await a.wait_for(rf"\* {b_id} joined")
    await a.wait_for(rf"on the DHT at 127\.0\.0\.1:{port}")
    status = await cli.run("status", "private", "--bootstrap", bootstrap)
    assert status.process.returncode == 0, status.err
    assert re.search(rf"127\.0\.0\.1:{port}: answers in [\d.]+ ms", status.err)
    assert re.search(r"topic 'private' \([0-9a-f]{16}…\): 2 peer\(s\)", status.err)
