"""Whatever arrives, the whole receive path (limit, decode, answer, bound, store) never raises.

The datagrams go straight into the node's datagram handler, synchronously: the path from
bytes to reply is the same as from the socket, and thousands of cases run in a second.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings, strategies as st

from p2pswarm.dht import DHTNode
from p2pswarm.dht.messages import Command, Request, Response
from p2pswarm.dht.ratelimit import RateLimit
from p2pswarm.dht.records import RecordKind, create_record, create_unannounce
from p2pswarm.keys import KeyPair

from .test_messages import requests, responses

KEY = KeyPair.generate()
TOPIC = bytes(range(32))
SOURCE = ("127.0.0.1", 40000)
SOURCES = [SOURCE, ("127.0.0.1", 40001), ("::1", 40002)]
RECORD = create_record(KEY, TOPIC, 7, seq=1, expiry=4e9).encode()
PEER_RECORD = create_record(KEY, KEY.public_key, 7, seq=1, expiry=4e9, kind=RecordKind.PEER)
UNANNOUNCE = create_unannounce(KEY, TOPIC, seq=2).encode()

#: A budget no example exhausts, so every datagram goes the whole way.
_NODE = DHTNode(
    ephemeral=False,
    max_records=50,
    max_records_per_topic=10,
    rate_limit=RateLimit(rate=1e9, burst=1e9),
)


@st.composite
def meaningful_requests(draw: st.DrawFn) -> Request:
    """Well-formed requests, often with a valid token and a real (or mangled) record."""
    request = draw(requests())
    if draw(st.booleans()):
        request = replace(request, token=_NODE._tokens.issue(SOURCE[0], _NODE.clock()))
    if request.command in (Command.ANNOUNCE, Command.UNANNOUNCE):
        payload = draw(
            st.sampled_from([RECORD, PEER_RECORD.encode(), UNANNOUNCE, b""])
            | st.binary(max_size=300)
        )
        cut = draw(st.integers(0, len(payload)))
        request = replace(request, payload=payload[:cut] if draw(st.booleans()) else payload)
    if request.command is Command.LOOKUP and draw(st.booleans()):
        request = replace(request, key=TOPIC)
    return request


def encoded(message: Request | Response) -> bytes:
    return message.encode()


@given(
    st.lists(
        st.binary(max_size=1500) | meaningful_requests().map(encoded) | responses().map(encoded),
        max_size=20,
    ),
    st.sampled_from(SOURCES),
)
@settings(max_examples=300, deadline=None)
def test_nothing_escapes_the_datagram_handler(
    datagrams: list[bytes], source: tuple[str, int]
) -> None:
    for data in datagrams:
        _NODE._rpc._handle_datagram(data, source)
    assert _NODE.stored_records <= 50
    # Only a requester holding our token for its IP gets in, and only at its own address.
    assert {(n.ip, n.port) for n in _NODE.routing_table.all_nodes()} <= {
        SOURCE,
        ("127.0.0.1", 40001),
    }


def test_the_fuzzed_inputs_can_reach_the_store() -> None:
    node = DHTNode(ephemeral=False)
    token = node._tokens.issue(SOURCE[0], node.clock())
    announce = Request(Command.ANNOUNCE, 1, token=token, payload=RECORD)
    node._rpc._handle_datagram(announce.encode(), SOURCE)
    assert node._store.get(RecordKind.TOPIC, TOPIC, KEY.public_key, node.clock()) is not None
