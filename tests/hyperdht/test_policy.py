"""Pure policy of the dht-rpc node: the query's walk, the congestion window, the budgets, the
routing table's full rows, and Hypothesis over the node's whole receive path."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from p2pswarm.hyperdht import DHTRPCNode
from p2pswarm.hyperdht.congestion import CongestionWindow
from p2pswarm.hyperdht.limits import Buckets, Limits, source_key
from p2pswarm.hyperdht.query import QueryPolicy
from p2pswarm.hyperdht.routing import RecentNodes, RoutingNode, RoutingTable
from p2pswarm.hyperdht.rpc import Peer
from p2pswarm.protocol.compact import IPv4Address
from p2pswarm.protocol.dht_rpc import (
    InternalCommand,
    Request,
    Response,
    decode_response,
    node_id,
)

TARGET = bytes(32)


def addr(i: int) -> tuple[str, int]:
    return ("127.0.0.1", 10000 + i)


def test_a_walk_keeps_the_k_closest_replies_and_ends() -> None:
    policy: QueryPolicy[str] = QueryPolicy(TARGET, k=3, concurrency=2)
    for i in range(3):
        policy.add_seed(Peer(*addr(i)))
    policy.mark_from_table()
    rounds = 0
    while not policy.done():
        rounds += 1
        assert rounds < 100
        visits = policy.next_visits()
        assert len(visits) <= 2
        for peer in visits:
            n = peer.port - 10000
            closer = [addr(n + 3), addr(n + 4)] if n < 20 else []
            policy.on_reply(peer.address, node_id(*peer.address), True, closer, str(n))
    ids = [node_id(*addr(int(r))) for r in policy.closest_replies]
    assert len(ids) == 3
    assert ids == sorted(ids, key=lambda i: int.from_bytes(i, "big"))


def test_lying_replies_cannot_make_a_walk_endless() -> None:
    """Every reply names 64 fresh nodes: the walk still visits at most max_visits."""
    policy: QueryPolicy[None] = QueryPolicy(TARGET, k=20, max_visits=50)
    policy.add_seed(Peer(*addr(0)))
    fresh = 1
    while not policy.done():
        for peer in policy.next_visits():
            closer = [addr(fresh + j) for j in range(64)]
            fresh += 64
            policy.on_reply(peer.address, None, True, closer, None)  # no id: never "closest"
    assert policy.visits <= 50
    assert policy.closest_replies == []


def test_a_timed_out_node_is_hinted_to_its_referrers() -> None:
    policy: QueryPolicy[None] = QueryPolicy(TARGET, k=20)
    policy.add_seed(Peer(*addr(0)))
    (first,) = policy.next_visits()
    policy.on_reply(first.address, node_id(*first.address), True, [addr(1)], None)
    (second,) = policy.next_visits()
    assert second.address == addr(1)
    policy.on_slow(addr(1))
    assert policy.on_error(addr(1), timed_out=True) == [(addr(0), addr(1))]
    assert policy.done()


def test_our_own_id_is_never_visited() -> None:
    own = node_id(*addr(5))
    policy: QueryPolicy[None] = QueryPolicy(TARGET, own_id=own)
    policy.add_seed(Peer(*addr(0)))
    (first,) = policy.next_visits()
    policy.on_reply(first.address, None, True, [addr(5)], None)
    assert policy.next_visits() == []


def test_a_walk_from_given_nodes_reseeds_from_the_table_once() -> None:
    policy: QueryPolicy[None] = QueryPolicy(TARGET, k=20)
    policy.add_seed(Peer(*addr(0)))
    (peer,) = policy.next_visits()
    assert policy.slowdown
    policy.on_error(peer.address, timed_out=False)
    assert policy.done() and policy.wants_table() and not policy.wants_table()


def test_congestion_window() -> None:
    window = CongestionWindow(2)
    window.send()
    window.send()
    assert window.is_full()
    window.drain()
    assert not window.is_full()
    window.send()
    window.send()
    assert window.is_full()  # 4 in the ring: twice the window
    window.recv()
    window.drain()
    window.drain()
    window.drain()
    assert not window.is_full()


def test_buckets_refill_and_stay_bounded() -> None:
    buckets = Buckets(rate=1.0, burst=2.0, max_keys=3)
    assert buckets.spend("a", 0.0) and buckets.spend("a", 0.0)
    assert not buckets.spend("a", 0.0)
    assert buckets.spend("a", 1.0)
    for key in "bcdef":
        buckets.spend(key, 1.0)
    assert len(buckets) == 3
    assert source_key(("127.0.0.1", 5)) == ("127.0.0.1", 5)
    assert source_key(("10.0.0.1", 5)) == "10.0.0.1"


def test_a_full_row_reports_the_newcomer() -> None:
    own = bytes(32)
    full: list[RoutingNode] = []
    table = RoutingTable(own, k=2, on_full_row=lambda new, row: full.append(new))
    nodes = [RoutingNode(bytes([0x80, i]) + bytes(30), "127.0.0.1", i) for i in range(3)]
    assert table.add(nodes[0]) and table.add(nodes[1])
    assert not table.add(nodes[2]) and full == [nodes[2]]
    assert table.remove(nodes[0].id) and table.add(nodes[2])
    assert table.get(nodes[2].id) is nodes[2] and len(table) == 2
    recent = RecentNodes()
    for node in nodes:
        recent.add(node)
    recent.add(nodes[0])
    assert recent.oldest(1) == [nodes[1]] and recent.latest(1) == [nodes[0]]


def _closest_by_scanning_every_row(
    table: RoutingTable, live: dict[bytes, RoutingNode], target: bytes, k: int
) -> list[bytes]:
    """kademlia-routing-table's closest, row by row over all 256 rows (the reference)."""
    rows: dict[int, list[RoutingNode]] = {}
    for node in live.values():
        x = int.from_bytes(node.id, "big") ^ int.from_bytes(table.id, "big")
        rows.setdefault(255 if x == 0 else 256 - x.bit_length(), []).append(node)
    x = int.from_bytes(target, "big") ^ int.from_bytes(table.id, "big")
    d = 255 if x == 0 else 256 - x.bit_length()
    out: list[bytes] = []
    for i in [*range(d, -1, -1), *range(d + 1, 256)]:
        for node in sorted(rows.get(i, []), key=lambda n: n.id):
            if len(out) < k:
                out.append(node.id)
    return out


@settings(max_examples=150, deadline=None)
@given(
    # ids sharing a prefix of 0..31 bytes with ours, so rows far from 0 fill too
    st.lists(
        st.tuples(st.integers(0, 31), st.binary(min_size=32, max_size=32)).map(
            lambda t: bytes(range(32))[: t[0]] + t[1][t[0] :]
        ),
        max_size=60,
    ),
    st.lists(st.integers(0, 59), max_size=20),
    st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=5),
    st.integers(0, 30),
)
def test_closest_visits_only_occupied_rows_yet_lists_what_a_full_scan_lists(
    ids: list[bytes], removed: list[int], targets: list[bytes], k: int
) -> None:
    own = bytes(range(32))
    table = RoutingTable(own, k=4)
    live: dict[bytes, RoutingNode] = {}
    for i, id in enumerate(ids):
        node = RoutingNode(id, "127.0.0.1", i)
        if table.add(node):
            live[id] = node
    for i in removed:
        if i < len(ids) and table.remove(ids[i]):
            del live[ids[i]]
    assert len(table) == len(live)
    for target in [*targets, own]:
        got = [n.id for n in table.closest(target, k)]
        assert got == _closest_by_scanning_every_row(table, live, target, k)


# -- the whole receive path, without a socket ----------------------------------------------

sources = st.tuples(
    st.sampled_from(["127.0.0.1", "127.0.0.2", "10.0.0.1", "192.168.0.9"]),
    st.integers(0, 65535),
)
junk = st.one_of(
    st.binary(max_size=120),
    st.binary(max_size=60).map(lambda b: b"\x03" + b),
    st.binary(max_size=60).map(lambda b: b"\x13" + b),
)


def offline_node(sent: list[tuple[bytes, tuple[str, int]]]) -> DHTRPCNode:
    return DHTRPCNode(
        send=lambda data, to: sent.append((data, to)),
        local_address=("127.0.0.1", 9),
        limits=Limits(max_sources=16),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(junk, sources), max_size=40))
def test_random_datagrams_never_escape_and_memory_stays_bounded(
    datagrams: list[tuple[bytes, tuple[str, int]]],
) -> None:
    sent: list[tuple[bytes, tuple[str, int]]] = []
    node = offline_node(sent)
    for data, source in datagrams:
        node.datagram_received(data, source)
    assert node.tracked_sources <= 16
    assert len(node.table) == 0  # nothing enters the table without a round trip
    for data, to in sent:
        assert to[1] != 0
        decode_response(data)  # whatever we answered is a well-formed response


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 65535),
    st.sampled_from([*InternalCommand, 77]),
    st.none() | st.binary(min_size=32, max_size=32),
    st.none() | st.binary(max_size=40),
    st.booleans(),
    sources.filter(lambda s: s[1] > 0),
)
def test_well_formed_requests_are_answered_or_ignored_as_js_does(
    tid: int,
    command: int,
    target: bytes | None,
    value: bytes | None,
    internal: bool,
    source: tuple[str, int],
) -> None:
    sent: list[tuple[bytes, tuple[str, int]]] = []
    node = offline_node(sent)
    request = Request(
        tid, IPv4Address("127.0.0.1", 9), command, internal, target=target, value=value
    )
    node.datagram_received(request.encode(), source)
    for data, to in sent:
        response = decode_response(data)
        assert response.tid == tid and response.id is None  # an ephemeral node has no id
        assert to[0] == source[0]


def test_an_unmatched_response_is_dropped_undecoded() -> None:
    sent: list[tuple[bytes, tuple[str, int]]] = []
    node = offline_node(sent)
    node.datagram_received(Response(5, IPv4Address("1.2.3.4", 1)).encode(), ("127.0.0.1", 5))
    assert node.dropped["unmatched"] == 1 and not sent
    assert node.public_address is None
