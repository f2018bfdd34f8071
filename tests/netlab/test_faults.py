"""Faults across hosts: loss both ways, a rate limit and delay; a pulled cable; kill -9.

The lab (see kit.py) has no ``tc netem``: loss is nftables' ``numgen random`` on what each
host sends (5 % on every host is 5 % on each direction of every path), the rate a ``tbf``
qdisc, and delay the UDX fault hook inside the processes. Every wait is on a process's
output; its bound is a safety net, not a measurement (bench/faults.py times these).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.proc import Runner

from .kit import Lab, fault_tools_missing
from .run import chat_mesh, dht_node, start_receiver, start_sender, udx_transfer

pytestmark = pytest.mark.anyio

LOSS = 5  # percent, on each host's sends
MB20 = 20 * 1024 * 1024


@pytest.fixture
def lossy(lab4: Lab) -> Iterator[Lab]:
    """The four hosts with 5 % loss on everything they send and a 100 Mbit/s rate."""
    reason = fault_tools_missing()
    if reason is not None:
        pytest.skip(reason)
    for host in lab4.hosts:
        lab4.drop(host, LOSS)
        lab4.rate(host, "100mbit")
    yield lab4


def blake2b_of(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=32)
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def big_file(directory: Path, size: int = MB20) -> Path:
    source = directory / "payload.bin"
    with source.open("wb") as out:
        for _ in range(size // (1 << 20)):
            out.write(os.urandom(1 << 20))
        out.write(os.urandom(size % (1 << 20)))
    return source


def events(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def test_the_mesh_converges_under_loss_both_ways(lossy: Lab, cli: Runner) -> None:
    node, bootstrap = await dht_node(cli, lossy.hosts[0])
    chats, _ = await chat_mesh(cli, lossy.hosts, bootstrap, "lossy-mesh", limit=90)
    for chat in chats:
        await chat.close_stdin()
        assert await chat.wait_exit() == 0, chat.err
    assert "Traceback" not in node.err


@pytest.mark.slow
async def test_20_mb_over_tcp_under_loss_arrive_intact(
    lossy: Lab, cli: Runner, tmp_path: Path
) -> None:
    source = big_file(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _, bootstrap = await dht_node(cli, lossy.hosts[0])
    receiver, key = await start_receiver(cli, lossy.hosts[1], bootstrap, inbox, tmp_path / "r")
    sender = await start_sender(cli, lossy.hosts[2], bootstrap, source, key)
    assert await sender.wait_exit(limit=300) == 0, sender.err
    assert await receiver.wait_exit() == 0, receiver.err
    done = next(e for e in events(sender.out) if e["event"] == "done")
    assert done["hash"] == blake2b_of(source) == blake2b_of(inbox / "payload.bin")


@pytest.mark.slow
async def test_20_mb_over_udx_under_loss_and_delay_arrive_intact(
    lossy: Lab, cli: Runner, tmp_path: Path
) -> None:
    source = big_file(tmp_path)
    target = tmp_path / "received.bin"
    digest = await udx_transfer(
        cli, lossy.hosts[1], lossy.hosts[2], source, target, delay=0.005, limit=300
    )
    assert digest == blake2b_of(source) == blake2b_of(target)


@pytest.mark.slow
async def test_udx_under_loss_between_hosts(lossy: Lab, cli: Runner, tmp_path: Path) -> None:
    """A shorter one: 2 MB with 5 % loss both ways, 5 ms delay each way."""
    source = big_file(tmp_path, 2 * 1024 * 1024 + 77)
    target = tmp_path / "received.bin"
    digest = await udx_transfer(cli, lossy.hosts[1], lossy.hosts[2], source, target, delay=0.005)
    assert digest == blake2b_of(source) == blake2b_of(target)


@pytest.mark.slow
async def test_a_pulled_cable_is_noticed_by_keepalive_and_the_peers_meet_again(
    lab4: Lab, cli: Runner
) -> None:
    hosts = lab4.hosts[:3]
    _, bootstrap = await dht_node(cli, hosts[0])
    (a, _b), keys = await chat_mesh(cli, hosts[1:], bootstrap, "cable")
    lab4.unplug(hosts[2])
    # No packet says the peer is gone: only missed keep-alives (idle timeout, 20 s).
    await a.wait_for(rf'"event":"leave"[^\n]*"peer":"{keys[1]}"', stream="stdout", limit=60)
    joins = a.out.count('"event":"join"')
    lab4.plug(hosts[2])
    await a.wait_for(rf'(?s)(?:"event":"join".*){{{joins + 1}}}', stream="stdout", limit=120)
    last_join = [e for e in events(a.out) if e["event"] == "join"][-1]
    assert last_join["peer"] == keys[1]


@pytest.mark.slow
async def test_a_sender_killed_mid_transfer_is_resumed_from_the_partial_file(
    lab4: Lab, cli: Runner, tmp_path: Path
) -> None:
    reason = fault_tools_missing()
    if reason is not None:
        pytest.skip(reason)
    lab4.rate(lab4.hosts[2], "40mbit")  # so that there is a "mid" to kill in
    source = big_file(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _, bootstrap = await dht_node(cli, lab4.hosts[0])
    receiver, key = await start_receiver(cli, lab4.hosts[1], bootstrap, inbox, tmp_path / "r")
    first = await start_sender(cli, lab4.hosts[2], bootstrap, source, key)
    await receiver.wait_for(r'"event":"progress"[^\n]*"bytes":[1-9]\d{6,}', stream="stdout")
    first.kill()  # SIGKILL: no goodbye, the kernel closes its sockets
    await receiver.wait_for(r'"event":"interrupted"', stream="stdout", limit=60)
    assert await first.wait_exit() != 0
    assert not (inbox / "payload.bin").exists()
    second = await start_sender(cli, lab4.hosts[2], bootstrap, source, key)
    assert await second.wait_exit(limit=120) == 0, second.err
    assert await receiver.wait_exit() == 0, receiver.err
    resume = next(e for e in events(second.out) if e["event"] == "resume")
    assert 0 < int(str(resume["offset"])) < MB20
    assert blake2b_of(inbox / "payload.bin") == blake2b_of(source)
    assert [p.name for p in inbox.iterdir()] == ["payload.bin"]
