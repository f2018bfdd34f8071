"""The routing table subclass (no asyncio; exact neighbours) and JSON persistence."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from kademlia.node import Node

from p2pswarm.dht.messages import NodeContact
from p2pswarm.dht.routing import (
    RoutingState,
    RoutingTable,
    load_routing_state,
    save_routing_state,
)
from p2pswarm.errors import DHTError


def random_node(port: int) -> Node:
    return Node(os.urandom(20), "127.0.0.1", port)


def test_find_neighbors_is_exact() -> None:
    table = RoutingTable(os.urandom(20), 4, lambda node: None)
    nodes = [random_node(1000 + i) for i in range(300)]
    for node in nodes:
        table.add_contact(node)
    known = table.all_nodes()
    assert len(known) == len(table)
    for _ in range(20):
        target = Node(os.urandom(20))
        expected = sorted(known, key=lambda n: n.long_id ^ target.long_id)[:4]
        assert [n.id for n in table.find_neighbors(target, 4)] == [n.id for n in expected]


def test_full_bucket_pings_its_head_through_the_callback() -> None:
    pinged: list[Node] = []
    local = bytes(20)
    table = RoutingTable(local, 2, pinged.append)
    # In the far half of the id space (never covering our own id), sharing exactly five
    # leading bits, so kademlia's rule keeps the bucket whole instead of splitting it.
    far = [
        Node(bytes([0x80 if i % 2 else 0x84]) + os.urandom(19), "127.0.0.1", 1000 + i)
        for i in range(6)
    ]
    for node in far:
        table.add_contact(node)
    assert pinged, "a full bucket outside our range must ask to ping its head"
    head = pinged[0]
    table.remove_contact(head)
    assert not table.contains(head.id)


def test_local_node_is_never_added() -> None:
    local = os.urandom(20)
    table = RoutingTable(local, 20, lambda node: None)
    table.add_contact(Node(local, "127.0.0.1", 1))
    assert len(table) == 0


def test_node_id_length_is_checked() -> None:
    with pytest.raises(ValueError):
        RoutingTable(bytes(32), 20, lambda node: None)


def test_state_round_trips_as_json(tmp_path: Path) -> None:
    state = RoutingState(
        os.urandom(20),
        (NodeContact(os.urandom(20), "127.0.0.1", 4000), NodeContact(os.urandom(20), "::1", 4001)),
    )
    path = tmp_path / "routing.json"
    save_routing_state(path, state)
    assert json.loads(path.read_text())["type"] == "p2pswarm-dht-routing"
    assert load_routing_state(path) == state
    assert state.addresses == [("127.0.0.1", 4000), ("::1", 4001)]
    assert [p.name for p in tmp_path.iterdir()] == ["routing.json"]  # no temp file left


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe",
        b"not json",
        b"[]",
        b'{"type": "other"}',
        b'{"type": "p2pswarm-dht-routing", "version": 9}',
        b'{"type": "p2pswarm-dht-routing", "version": 1, "node_id": "00", "nodes": []}',
        b'{"type": "p2pswarm-dht-routing", "version": 1, "node_id": "'
        + b"00" * 20
        + b'", "nodes": [1]}',
        b'{"type": "p2pswarm-dht-routing", "version": 1, "node_id": "'
        + b"00" * 20
        + b'", "nodes": [{"id": "'
        + b"00" * 20
        + b'", "host": "example.com", "port": 1}]}',
        b'{"type": "p2pswarm-dht-routing", "version": 1, "node_id": "'
        + b"00" * 20
        + b'", "nodes": [{"id": "'
        + b"00" * 20
        + b'", "host": "127.0.0.1", "port": 0}]}',
        b" " * (1 << 20) + b"{}",
    ],
)
def test_corrupt_state_files_raise_dht_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "routing.json"
    path.write_bytes(content)
    with pytest.raises(DHTError):
        load_routing_state(path)


def test_missing_state_file(tmp_path: Path) -> None:
    with pytest.raises(DHTError, match="cannot read"):
        load_routing_state(tmp_path / "absent.json")


def test_deeply_nested_json_is_a_dht_error_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "routing.json"
    path.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    with pytest.raises(DHTError, match="not a valid routing state"):
        load_routing_state(path)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(["id", "host", "port", "x"]) | st.text(), children)
    ),
    max_leaves=30,
)


@st.composite
def _state_documents(draw: st.DrawFn) -> object:
    """Mostly well-shaped documents with hostile values, sometimes anything at all."""
    entry = st.fixed_dictionaries(
        {
            "id": st.text(max_size=44) | st.just("00" * 20) | _json,
            "host": st.sampled_from(["127.0.0.1", "::1", "example.com", "1.2.3", ""]) | _json,
            "port": st.integers(-1, 70000) | _json,
        }
    )
    document = {
        "type": draw(st.just("p2pswarm-dht-routing") | _json),
        "version": draw(st.just(1) | _json),
        "node_id": draw(st.just("11" * 20) | st.text(max_size=44) | _json),
        "nodes": draw(st.lists(entry | _json, max_size=5) | _json),
    }
    return draw(st.just(document) | _json)


@given(st.binary(max_size=300) | _state_documents().map(lambda d: json.dumps(d).encode()))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_state_decoder_fuzz_returns_a_state_or_raises_dht_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "routing.json"
        path.write_bytes(content)
        try:
            state = load_routing_state(path)
        except DHTError:
            return
    assert len(state.node_id) == 20
    for contact in state.nodes:
        assert len(contact.node_id) == 20 and 0 < contact.port <= 0xFFFF


def test_no_room_means_add_contact_would_not_take_it() -> None:
    table = RoutingTable(os.urandom(20), 2, lambda node: None)
    refused = 0
    for port in range(1, 400):
        node = random_node(port)
        room = table.has_room_for(node.id)
        table.add_contact(node)
        if not room:
            refused += 1
            assert not table.contains(node.id)
    assert refused > 0
