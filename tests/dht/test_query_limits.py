"""A query steered by lying replies stays bounded: requests, contacts per host, addresses."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable

import pytest

from p2pswarm.dht.messages import Command, NodeContact, Response
from p2pswarm.dht.query import (
    MAX_CONTACTS_PER_HOST,
    MAX_QUERY_REQUESTS,
    IterativeQuery,
    plausible_host,
)

Address = tuple[str, int]


@pytest.mark.parametrize(
    ("host", "responder", "plausible"),
    [
        ("203.0.113.7", "198.51.100.1", True),
        ("10.0.0.7", "10.0.0.1", True),
        ("127.0.0.1", "127.0.0.1", True),
        ("::1", "::1", True),
        ("127.0.0.1", "198.51.100.1", False),  # a remote node aiming us at ourselves
        ("::1", "2001:db8::1", False),
        ("0.0.0.0", "198.51.100.1", False),
        ("224.0.0.1", "198.51.100.1", False),
        ("255.255.255.255", "198.51.100.1", False),
        ("240.0.0.1", "198.51.100.1", False),
        ("ff02::1", "2001:db8::1", False),
        ("2001:db8::7", "198.51.100.1", False),  # not our socket's family
        ("203.0.113.7", "2001:db8::1", False),
        ("not an ip", "198.51.100.1", False),
    ],
)
def test_plausible_hosts(host: str, responder: str, plausible: bool) -> None:
    assert plausible_host(host, responder) is plausible


pytestmark = pytest.mark.anyio


def liar(contacts: Callable[[Address], list[NodeContact]]) -> tuple[list[Address], object]:
    """A request function that answers every address with ``contacts(address)``."""
    asked: list[Address] = []

    async def request(address: Address, on_slow: Callable[[], None]) -> Response:
        asked.append(address)
        nodes = tuple(contacts(address))
        return Response(Command.FIND_NODE, 1, ("198.51.100.1", 1), os.urandom(20), nodes=nodes)

    return asked, request


def ever_closer(target: bytes) -> Callable[[Address], list[NodeContact]]:
    """Twenty new ids, each closer to ``target`` than any before, at twenty new hosts:
    followed blindly, the walk would never end."""
    counter = iter(range(1, 10**6))
    base = int.from_bytes(target, "big")

    def contacts(_: Address) -> list[NodeContact]:
        found = []
        for _ in range(20):
            n = next(counter)
            node_id = (base ^ (2**150 - n)).to_bytes(20, "big")
            found.append(NodeContact(node_id, f"10.{n >> 16}.{n >> 8 & 255}.{n & 255}", 1))
        return found

    return contacts


async def test_endless_fresh_contacts_stop_at_the_request_cap() -> None:
    target = os.urandom(20)
    asked, request = liar(ever_closer(target))
    query = IterativeQuery(
        target,
        request,  # type: ignore[arg-type]
        seeds=(),
        bootstrap=[("198.51.100.1", 1)],
        ksize=20,
        alpha=10,
        local_id=None,
    )
    await query.run()
    assert len(asked) == query.requests_sent == MAX_QUERY_REQUESTS


async def test_one_host_gets_at_most_a_few_requests_from_one_query() -> None:
    def contacts(_: Address) -> list[NodeContact]:
        # A victim's IP under twenty ids and ports, plus implausible addresses.
        victim = [NodeContact(os.urandom(20), "203.0.113.9", 1000 + i) for i in range(16)]
        junk = [
            NodeContact(os.urandom(20), host, 1)
            for host in ("127.0.0.1", "0.0.0.0", "224.0.0.1", "2001:db8::1")
        ]
        return victim + junk

    asked, request = liar(contacts)
    query = IterativeQuery(
        os.urandom(20),
        request,  # type: ignore[arg-type]
        seeds=(),
        bootstrap=[("198.51.100.1", 1)],
        ksize=20,
        alpha=10,
        local_id=None,
    )
    await query.run()
    per_host = Counter(host for host, _ in asked)
    assert per_host == {"198.51.100.1": 1, "203.0.113.9": MAX_CONTACTS_PER_HOST}
