"""Every example in ``examples/`` runs as a real subprocess on a private local network."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.cli.proc import REPO, Runner

pytestmark = pytest.mark.anyio

EXAMPLES = REPO / "examples"


async def test_demo_runs_on_the_embedded_network_and_exits_by_itself(cli: Runner) -> None:
    demo = await cli.start(stdin=subprocess.DEVNULL, script=EXAMPLES / "demo.py")
    assert await demo.wait_exit() == 0, demo.err
    out = demo.out
    assert "[bob] " in out and "says: hello from alice" in out
    assert "[alice] " in out and "says: hello from bob" in out
    assert out.rstrip().endswith("done")


async def test_chat_example_exchanges_lines(cli: Runner) -> None:
    a = await cli.start("room", script=EXAMPLES / "chat.py")
    b = await cli.start("room", script=EXAMPLES / "chat.py")
    a_id = (await a.wait_for(r"you are ([0-9a-f]{8})"))[1]
    await b.wait_for(rf"\* {a_id} joined")
    await a.wait_for(r"\* [0-9a-f]{8} joined")
    await a.send(b"hello chat\n")
    await b.wait_for(rf"\[{a_id}\] hello chat", stream="stdout")
    await a.close_stdin()
    assert await a.wait_exit() == 0
    await b.wait_for(rf"\* {a_id} left")


async def test_pipe_example_moves_bytes(cli: Runner, tmp_path: Path) -> None:
    data = os.urandom(100_000)
    (tmp_path / "in.bin").write_bytes(data)
    source = os.open(tmp_path / "in.bin", os.O_RDONLY)
    try:
        receiver = await cli.start("p", stdin=subprocess.DEVNULL, script=EXAMPLES / "pipe.py")
        sender = await cli.start("p", stdin=source, script=EXAMPLES / "pipe.py")
        assert await sender.wait_exit() == 0, sender.err
        assert await receiver.wait_exit() == 0, receiver.err
    finally:
        os.close(source)
    assert bytes(receiver.stdout) == data


async def test_join_peer_example_links_by_key(cli: Runner) -> None:
    server = await cli.start("serve", script=EXAMPLES / "join_peer.py")
    key = (await server.wait_for(r"my key is ([0-9a-f]{64})", stream="stdout"))[1]
    client = await cli.run("connect", key, script=EXAMPLES / "join_peer.py")
    assert client.process.returncode == 0, client.err
    assert "replied 'HELLO OVER A DIRECT LINK'" in client.out
    await server.wait_for(r"connected", stream="stdout")


async def test_file_sync_example_makes_two_folders_equal(cli: Runner, tmp_path: Path) -> None:
    left, right = tmp_path / "left", tmp_path / "right"
    left.mkdir()
    right.mkdir()
    (left / "only-left.txt").write_text("left\n")
    (left / "blob.bin").write_bytes(os.urandom(300_000))
    (right / "only-right.txt").write_text("right\n")
    (left / "both.txt").write_text("same\n")
    (right / "both.txt").write_text("same\n")
    a = await cli.start(str(left), "sync", "--once", script=EXAMPLES / "file_sync.py")
    b = await cli.start(str(right), "sync", "--once", script=EXAMPLES / "file_sync.py")
    assert await a.wait_exit() == 0, a.err
    assert await b.wait_exit() == 0, b.err
    names = {"only-left.txt", "only-right.txt", "blob.bin", "both.txt"}
    assert {p.name for p in left.iterdir()} == names == {p.name for p in right.iterdir()}
    for name in names:
        assert (left / name).read_bytes() == (right / name).read_bytes()


async def test_file_sync_example_refuses_a_bad_folder(cli: Runner, tmp_path: Path) -> None:
    proc = await cli.run(str(tmp_path / "missing"), "t", script=EXAMPLES / "file_sync.py")
    assert proc.process.returncode == 1 and "usage" in proc.err


async def test_rpc_service_example_answers_a_client_that_found_it_by_topic(cli: Runner) -> None:
    server = await cli.start("serve", "adder", script=EXAMPLES / "rpc_service.py")
    await server.wait_for(r"server: serving 'adder'", stream="stdout")
    client = await cli.run("call", "adder", "2", "40", script=EXAMPLES / "rpc_service.py")
    assert client.process.returncode == 0, client.err
    assert "client: 2 + 40 = 42" in client.out
    assert "'served': 1" in client.out
    assert "refused as expected: unknown-method" in client.out


async def test_gossip_chat_example_reaches_everyone(cli: Runner) -> None:
    peers = [await cli.start("g-room", script=EXAMPLES / "gossip_chat.py") for _ in range(3)]
    ids = [(await p.wait_for(r"you are ([0-9a-f]{8})"))[1] for p in peers]
    for p in peers:
        await p.wait_for(r"\* 2 gossip neighbours")
        await p.wait_for(r"\* neighbour user-[0-9a-f]{8}")
    await peers[0].send(b"hello by gossip\n")
    for p in peers[1:]:
        await p.wait_for(rf"\[{ids[0]}\] hello by gossip", stream="stdout")
    for p in peers:
        await p.close_stdin()
        assert await p.wait_exit() == 0, p.err


async def test_kv_store_example_keeps_keys_on_the_responsible_peer(cli: Runner) -> None:
    a = await cli.start("kv-room", script=EXAMPLES / "kv_store.py")
    b = await cli.start("kv-room", script=EXAMPLES / "kv_store.py")
    ids = sorted([(await p.wait_for(r"you are ([0-9a-f]{8})", stream="stdout"))[1] for p in (a, b)])
    members = re.escape("* members: " + " ".join(ids))
    for p in (a, b):  # printed when each sees the other (channels open after connecting)
        await p.wait_for(members, stream="stdout")
    await a.send(b"members\n")
    await a.wait_for(re.escape("members: " + " ".join(ids)), stream="stdout")
    for n in range(6):
        await a.send(f"put key{n} value{n}\n".encode())
        await a.wait_for(rf"ok key{n} on [0-9a-f]{{8}}", stream="stdout")
    for n in range(6):
        await b.send(f"get key{n}\n".encode())
        await b.wait_for(rf"key{n} = value{n} \(from [0-9a-f]{{8}}\)", stream="stdout")
    for p in (a, b):
        await p.close_stdin()
        assert await p.wait_exit() == 0, p.err
