"""What a storing node answers, as JS's persistent.js does: signatures, limits, seq rules."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from p2pswarm.hyperdht.records import (
    hash32,
    sign_announce,
    sign_mutable,
    sign_unannounce,
)
from p2pswarm.hyperdht.serving import UNHANDLED, Reply, Request, Store
from p2pswarm.keys import KeyPair
from p2pswarm.protocol.compact import IPv4Address
from p2pswarm.protocol.hyperdht_messages import (
    Announce,
    Command,
    MutablePutRequest,
    Peer,
    RemoteError,
    decode_lookup_reply,
    decode_mutable_get_response,
    decode_peer,
    encode_announce,
    encode_mutable_get_request,
    encode_mutable_put_request,
)

NODE_ID = hash32(b"node")
OTHER_ID = hash32(b"other node")
TOKEN = hash32(b"token")
TOPIC = hash32(b"topic")
FROM = IPv4Address("127.0.0.1", 40000)
ALICE = KeyPair.from_seed(b"a" * 32)
BOB = KeyPair.from_seed(b"b" * 32)
STORED = Reply(token=False, closer_nodes=False)


class Clocks:
    def __init__(self) -> None:
        self.now = 0.0
        self.wall_ms = 1_700_000_000_000

    def store(self) -> Store:
        return Store(clock=lambda: self.now, wall_clock_ms=lambda: self.wall_ms)


def request(
    command: int,
    target: bytes | None,
    value: bytes | None,
    token: bytes | None = TOKEN,
    from_address: IPv4Address = FROM,
) -> Request:
    return Request(command, target, token, value, from_address)


def announce(
    key_pair: KeyPair,
    target: bytes = TOPIC,
    relays: tuple[IPv4Address, ...] = (),
    *,
    node_id: bytes = NODE_ID,
    token: bytes = TOKEN,
    bump: int = 0,
    refresh: bytes | None = None,
) -> bytes:
    peer = Peer(key_pair.public_key, relays)
    signature = sign_announce(key_pair, target, node_id, token, peer, refresh)
    return encode_announce(Announce(peer, refresh, signature, bump))


def lookup(store: Store, target: bytes = TOPIC) -> list[Peer]:
    reply = store.handle(request(Command.LOOKUP, target, None, None), NODE_ID)
    assert reply is not None and reply.token and reply.closer_nodes
    return [] if reply.value is None else list(decode_lookup_reply(reply.value).peers)


def test_a_signed_announce_is_stored_and_looked_up() -> None:
    store = Clocks().store()
    relays = (IPv4Address("10.0.0.1", 1), IPv4Address("10.0.0.2", 2))
    assert (
        store.handle(request(Command.ANNOUNCE, TOPIC, announce(ALICE, relays=relays)), NODE_ID)
        == STORED
    )
    assert lookup(store) == [Peer(ALICE.public_key, relays)]


def test_an_ephemeral_node_serves_nothing() -> None:
    store = Clocks().store()
    assert store.handle(request(Command.ANNOUNCE, TOPIC, announce(ALICE)), None) == UNHANDLED
    assert store.handle(request(Command.PEER_HANDSHAKE, TOPIC, b""), NODE_ID) == UNHANDLED
    assert store.handle(request(99, TOPIC, b""), NODE_ID) == UNHANDLED


def test_wrong_replayed_or_forged_announces_are_dropped_silently() -> None:
    store = Clocks().store()
    cases = [
        # signed for another storing node: a replay from that node's copy
        announce(ALICE, node_id=OTHER_ID),
        # signed over another token (an old one, or a forged one)
        announce(ALICE, token=hash32(b"old token")),
        # signed for another topic
        announce(ALICE, target=hash32(b"elsewhere")),
        # Bob's key with Alice's signature
        encode_announce(
            Announce(
                Peer(BOB.public_key),
                None,
                sign_announce(ALICE, TOPIC, NODE_ID, TOKEN, Peer(ALICE.public_key)),
            )
        ),
        # no signature at all
        encode_announce(Announce(Peer(ALICE.public_key))),
        # garbage
        b"\x01\x02",
        b"",
    ]
    for value in cases:
        assert store.handle(request(Command.ANNOUNCE, TOPIC, value), NODE_ID) is None
    # no token or no target: JS does not answer either
    assert store.handle(request(Command.ANNOUNCE, TOPIC, announce(ALICE), None), NODE_ID) is None
    assert store.handle(request(Command.ANNOUNCE, None, announce(ALICE)), NODE_ID) is None
    assert store.handle(request(Command.ANNOUNCE, TOPIC, None), NODE_ID) is None
    assert lookup(store) == []


def test_relays_are_truncated_to_three_after_verification() -> None:
    store = Clocks().store()
    relays = tuple(IPv4Address(f"10.0.0.{i}", i) for i in range(1, 6))
    store.handle(request(Command.ANNOUNCE, TOPIC, announce(ALICE, relays=relays)), NODE_ID)
    assert lookup(store) == [Peer(ALICE.public_key, relays[:3])]


def test_at_most_twenty_records_per_lookup_reply() -> None:
    store = Clocks().store()
    for i in range(25):
        key = KeyPair.from_seed(bytes([i]) * 32)
        store.handle(request(Command.ANNOUNCE, TOPIC, announce(key)), NODE_ID)
    assert len(lookup(store)) == 20
    assert len(store.records.get(TOPIC, 100)) == 25


def test_a_server_announcing_itself_goes_to_the_router_and_answers_find_peer() -> None:
    store = Clocks().store()
    target = hash32(ALICE.public_key)
    relays = (IPv4Address("10.0.0.9", 9),)
    value = announce(ALICE, target, relays)
    assert store.handle(request(Command.ANNOUNCE, target, value), NODE_ID) == STORED
    assert store.records.get(target, 20) == []
    forward = store.forwards.get(target)
    assert forward is not None and forward.relay == FROM
    reply = store.handle(request(Command.FIND_PEER, target, None, None), NODE_ID)
    assert reply is not None and reply.value is not None
    assert decode_peer(reply.value) == Peer(ALICE.public_key, relays)
    # LOOKUP on that target also returns the route (appended after records)
    assert lookup(store, target) == [Peer(ALICE.public_key, relays)]
    # FIND_PEER for someone unknown: an empty reply with token and closer nodes
    assert store.handle(request(Command.FIND_PEER, TOPIC, None, None), NODE_ID) == Reply()


def test_unannounce_needs_its_own_signature() -> None:
    store = Clocks().store()
    store.handle(request(Command.ANNOUNCE, TOPIC, announce(ALICE)), NODE_ID)
    peer = Peer(ALICE.public_key)
    # an announce signature does not unannounce (different namespace)
    replayed = announce(ALICE)
    assert store.handle(request(Command.UNANNOUNCE, TOPIC, replayed), NODE_ID) is None
    by_bob = encode_announce(
        Announce(peer, None, sign_unannounce(BOB, TOPIC, NODE_ID, TOKEN, peer))
    )
    assert store.handle(request(Command.UNANNOUNCE, TOPIC, by_bob), NODE_ID) is None
    assert lookup(store) == [peer]
    good = encode_announce(
        Announce(peer, None, sign_unannounce(ALICE, TOPIC, NODE_ID, TOKEN, peer))
    )
    assert store.handle(request(Command.UNANNOUNCE, TOPIC, good), NODE_ID) == STORED
    assert lookup(store) == []


def test_bump_is_kept_if_newer_and_not_too_far_ahead() -> None:
    clocks = Clocks()
    store = clocks.store()

    def bump_after(value: int) -> int:
        store.handle(request(Command.ANNOUNCE, TOPIC, announce(ALICE, bump=value)), NODE_ID)
        reply = store.handle(request(Command.LOOKUP, TOPIC, None, None), NODE_ID)
        assert reply is not None and reply.value is not None
        return decode_lookup_reply(reply.value).bump

    assert bump_after(clocks.wall_ms) == clocks.wall_ms
    assert bump_after(clocks.wall_ms - 5) == clocks.wall_ms  # older: ignored
    assert bump_after(clocks.wall_ms + 60_000) == clocks.wall_ms + 60_000
    assert bump_after(clocks.wall_ms + 60_001 + 60_000) == clocks.wall_ms + 60_000  # too far


def test_a_refresh_only_announce_extends_the_record_by_its_hash_chain() -> None:
    clocks = Clocks()
    store = clocks.store()
    second = hash32(b"secret")
    first = hash32(second)
    store.handle(request(Command.ANNOUNCE, TOPIC, announce(ALICE, refresh=first)), NODE_ID)
    clocks.now += 1000.0  # stale after one tick, would be gone after the next
    refresh = encode_announce(Announce(refresh=second))
    assert store.handle(request(Command.ANNOUNCE, TOPIC, refresh), NODE_ID) == STORED
    clocks.now += 1000.0
    assert lookup(store) == [Peer(ALICE.public_key)]
    # the same link does not work twice; an unknown link is silently dropped
    assert store.handle(request(Command.ANNOUNCE, TOPIC, refresh), NODE_ID) is None
    bogus = encode_announce(Announce(refresh=hash32(b"guess")))
    assert store.handle(request(Command.ANNOUNCE, TOPIC, bogus), NODE_ID) is None


def test_records_expire_after_twenty_minutes_at_most_twenty_six() -> None:
    clocks = Clocks()
    store = clocks.store()
    store.handle(request(Command.ANNOUNCE, TOPIC, announce(ALICE)), NODE_ID)
    clocks.now += 799.0
    assert lookup(store) != []
    clocks.now += 802.0
    assert lookup(store) == []


def mutable_put(
    key_pair: KeyPair, seq: int, value: bytes, signer: KeyPair | None = None
) -> Request:
    signature = sign_mutable(signer or key_pair, seq, value)
    put = MutablePutRequest(key_pair.public_key, seq, value, signature)
    return request(
        Command.MUTABLE_PUT, hash32(key_pair.public_key), encode_mutable_put_request(put)
    )


def mutable_get(store: Store, key_pair: KeyPair, seq: int = 0) -> tuple[int, bytes] | None:
    get = request(
        Command.MUTABLE_GET, hash32(key_pair.public_key), encode_mutable_get_request(seq), None
    )
    reply = store.handle(get, NODE_ID)
    assert reply is not None
    if reply.value is None:
        return None
    stored = decode_mutable_get_response(reply.value)
    return stored.seq, stored.value


def test_mutable_seq_rules() -> None:
    store = Clocks().store()
    assert store.handle(mutable_put(ALICE, 1, b"one"), NODE_ID) == Reply()
    assert mutable_get(store, ALICE) == (1, b"one")
    assert store.handle(mutable_put(ALICE, 1, b"one"), NODE_ID) == Reply()  # same: fine
    reused = store.handle(mutable_put(ALICE, 1, b"uno"), NODE_ID)
    assert reused == Reply(error=RemoteError.SEQ_REUSED, token=False)
    too_low = store.handle(mutable_put(ALICE, 0, b"zero"), NODE_ID)
    assert too_low == Reply(error=RemoteError.SEQ_TOO_LOW, token=False)
    assert store.handle(mutable_put(ALICE, 5, b"five"), NODE_ID) == Reply()
    assert mutable_get(store, ALICE) == (5, b"five")
    assert mutable_get(store, ALICE, seq=6) is None  # the asker wants newer than stored
    assert mutable_get(store, BOB) is None


def test_wrongly_signed_or_misplaced_mutables_are_dropped() -> None:
    store = Clocks().store()
    assert store.handle(mutable_put(ALICE, 1, b"x", signer=BOB), NODE_ID) is None
    good = mutable_put(ALICE, 1, b"x")
    assert store.handle(good._replace(target=hash32(b"elsewhere")), NODE_ID) is None
    assert store.handle(good._replace(token=None), NODE_ID) is None
    assert store.handle(good._replace(value=good.value[:-1]), NODE_ID) is None  # truncated
    # a signature for seq 1 replayed with seq 2
    assert good.value is not None
    replay = bytearray(good.value)
    replay[32] = 2
    assert store.handle(good._replace(value=bytes(replay)), NODE_ID) is None
    assert mutable_get(store, ALICE) is None
    bad_get = request(Command.MUTABLE_GET, hash32(ALICE.public_key), b"\xfd", None)
    assert store.handle(bad_get, NODE_ID) is None


def test_immutable_values_are_stored_under_their_hash_only() -> None:
    store = Clocks().store()
    value = b"some bytes"
    put = request(Command.IMMUTABLE_PUT, hash32(value), value)
    assert store.handle(put, NODE_ID) == Reply()
    assert store.handle(put._replace(target=hash32(b"other")), NODE_ID) is None
    assert store.handle(put._replace(token=None), NODE_ID) is None
    get = request(Command.IMMUTABLE_GET, hash32(value), None, None)
    assert store.handle(get, NODE_ID) == Reply(value)
    assert store.handle(get._replace(target=hash32(b"other")), NODE_ID) == Reply()


def test_values_live_forty_eight_hours() -> None:
    clocks = Clocks()
    store = clocks.store()
    store.handle(request(Command.IMMUTABLE_PUT, hash32(b"v"), b"v"), NODE_ID)
    store.handle(mutable_put(ALICE, 1, b"m"), NODE_ID)
    clocks.now += 32 * 3600.0 - 1  # just before the first tick (2/3 of 48 h)
    clocks.now += 2
    clocks.now += 32 * 3600.0  # two ticks without a read: gone
    assert (
        store.handle(request(Command.IMMUTABLE_GET, hash32(b"v"), None, None), NODE_ID) == Reply()
    )
    assert mutable_get(store, ALICE) is None


@settings(max_examples=400, deadline=None)
@given(
    command=st.integers(0, 12),
    target=st.none() | st.binary(min_size=32, max_size=32),
    token=st.none() | st.binary(min_size=32, max_size=32),
    value=st.none() | st.binary(max_size=300),
    persistent=st.booleans(),
)
def test_any_request_gets_a_reply_or_silence_never_an_exception(
    command: int, target: bytes | None, token: bytes | None, value: bytes | None, persistent: bool
) -> None:
    store = Clocks().store()
    reply = store.handle(
        Request(command, target, token, value, FROM), NODE_ID if persistent else None
    )
    assert reply is None or isinstance(reply, Reply)
    # random bytes never store anything (a valid signature cannot be guessed)
    assert len(store.records) == 0 and len(store.mutables) == 0 and len(store.forwards) == 0
