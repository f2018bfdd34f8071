"""What a persistent HyperDHT node answers: the storage commands, as pure functions.

A port of ``hyperdht/lib/persistent.js``: each handler takes one decoded request and returns
the :class:`Reply` to send, or ``None`` to send nothing (JS stays silent on a malformed or
wrongly signed request rather than telling the sender why). dht-rpc has already checked the
round-trip token before a request gets here, so a token present is a token this node issued
to that host within the last 7.5 to 15 s.

Only a node with an id (persistent: reachable and stable) serves these commands; any other
answers UNKNOWN_COMMAND with closer nodes, as JS does, so queries route past it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, NamedTuple

from ..errors import CompactDecodeError
from ..protocol.compact import IPv4Address
from ..protocol.hyperdht_messages import (
    MAX_STORED_RELAY_ADDRESSES,
    Announce,
    Command,
    MutableGetResponse,
    Peer,
    RemoteError,
    decode_announce,
    decode_mutable_get_request,
    decode_mutable_get_response,
    decode_mutable_put_request,
    encode_lookup_reply,
    encode_mutable_get_response,
    encode_peer,
)
from .records import hash32, verify_announce, verify_mutable, verify_unannounce
from .storage import (
    IMMUTABLE_MAX_AGE,
    MAX_SIZE,
    MUTABLE_MAX_AGE,
    RECORD_MAX_AGE,
    MaxCache,
    RecordCache,
)

__all__ = (
    "LOOKUP_RECORDS",
    "MAX_BUMP_DRIFT_MS",
    "MAX_VALUE_BYTES",
    "UNHANDLED",
    "Forward",
    "Reply",
    "Request",
    "Store",
)

#: A LOOKUP reply carries at most this many records (``persistent.js onlookup``).
LOOKUP_RECORDS: Final = 20
#: A bump (a millisecond timestamp) is kept only if at most this far in the future.
MAX_BUMP_DRIFT_MS: Final = 60_000
#: Not in JS: each of the mutable and immutable stores collects a generation once its new
#: values weigh this much, so values cost at most twice this in memory whatever the flood.
MAX_VALUE_BYTES: Final = 32 * 1024 * 1024


class Request(NamedTuple):
    """The parts of a dht-rpc request a HyperDHT handler reads (internal flag clear)."""

    command: int
    target: bytes | None
    token: bytes | None
    value: bytes | None
    from_address: IPv4Address


class Reply(NamedTuple):
    """What to send back: ``token`` and ``closer_nodes`` say whether dht-rpc adds them."""

    value: bytes | None = None
    error: int = 0
    token: bool = True
    closer_nodes: bool = True


#: The answer of a node that does not serve the command (JS ``onrequest`` returning false).
UNHANDLED: Final = Reply(error=RemoteError.UNKNOWN_COMMAND, token=False, closer_nodes=True)
_STORED: Final = Reply(token=False, closer_nodes=False)


class Forward(NamedTuple):
    """A server that announced itself here (``H(public_key) == target``): its record and the
    address it announced from, the relay a PEER_HANDSHAKE for it is forwarded to."""

    relay: IPv4Address
    record: bytes


class _Refresh(NamedTuple):
    target: bytes
    record: bytes
    announce_self: bool


def _value_size(value: bytes) -> int:
    return len(value)


class Store:
    """The serving state of one node: topic records, server routes, (im)mutable values.

    ``clock`` is monotonic seconds (ages); ``wall_clock_ms`` is Unix milliseconds, the clock
    bumps are compared against.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        max_size: int = MAX_SIZE,
        max_age: float | None = None,
    ) -> None:
        record_age = max_age or RECORD_MAX_AGE
        self._wall_clock_ms = wall_clock_ms
        self.records: RecordCache[bytes] = RecordCache(max_size, record_age, clock)
        self.forwards: MaxCache[bytes, Forward] = MaxCache(max_size, record_age, clock)
        self.bumps: MaxCache[bytes, int] = MaxCache(max_size, record_age, clock)
        self.refreshes: MaxCache[bytes, _Refresh] = MaxCache(max_size, record_age, clock)
        half = max_size // 2
        self.mutables: MaxCache[bytes, bytes] = MaxCache(
            half,
            max_age or MUTABLE_MAX_AGE,
            clock,
            max_bytes=MAX_VALUE_BYTES,
            weigh=_value_size,
        )
        self.immutables: MaxCache[bytes, bytes] = MaxCache(
            half,
            max_age or IMMUTABLE_MAX_AGE,
            clock,
            max_bytes=MAX_VALUE_BYTES,
            weigh=_value_size,
        )

    def handle(self, request: Request, node_id: bytes | None) -> Reply | None:
        """Answer one HyperDHT request; ``node_id`` is None while this node is ephemeral."""
        if node_id is None:
            return UNHANDLED
        command = request.command
        if command == Command.LOOKUP:
            return self.on_lookup(request)
        if command == Command.FIND_PEER:
            return self.on_find_peer(request)
        if command == Command.ANNOUNCE:
            return self.on_announce(request, node_id)
        if command == Command.UNANNOUNCE:
            return self.on_unannounce(request, node_id)
        if command == Command.MUTABLE_PUT:
            return self.on_mutable_put(request)
        if command == Command.MUTABLE_GET:
            return self.on_mutable_get(request)
        if command == Command.IMMUTABLE_PUT:
            return self.on_immutable_put(request)
        if command == Command.IMMUTABLE_GET:
            return self.on_immutable_get(request)
        return UNHANDLED

    # -- topics and servers -------------------------------------------------------------

    def on_lookup(self, request: Request) -> Reply | None:
        if request.target is None:
            return None
        records = self.records.get(request.target, LOOKUP_RECORDS)
        forward = self.forwards.get(request.target)
        if forward is not None and len(records) < LOOKUP_RECORDS:
            records.append(forward.record)
        if not records:
            return Reply()
        return Reply(encode_lookup_reply(records, self.bumps.get(request.target) or 0))

    def on_find_peer(self, request: Request) -> Reply | None:
        if request.target is None:
            return None
        forward = self.forwards.get(request.target)
        return Reply(forward.record if forward is not None else None)

    def on_announce(self, request: Request, node_id: bytes) -> Reply | None:
        target, token = request.target, request.token
        if target is None or token is None:
            return None
        announce = _decode_announce(request.value)
        if announce is None:
            return None
        peer = announce.peer
        if peer is None:
            return self._on_refresh(announce.refresh, request) if announce.refresh else None
        signature = announce.signature
        if signature is None or not verify_announce(
            signature, target, node_id, token, peer, announce.refresh
        ):
            return None
        if len(peer.relay_addresses) > MAX_STORED_RELAY_ADDRESSES:
            peer = Peer(peer.public_key, peer.relay_addresses[:MAX_STORED_RELAY_ADDRESSES])
        record = encode_peer(peer)
        announce_self = hash32(peer.public_key) == target
        if announce_self:
            self.forwards.set(target, Forward(request.from_address, record))
            self.records.remove(target, peer.public_key)
        else:
            bump = announce.bump
            if bump > (self.bumps.get(target) or 0) and bump <= self._wall_clock_ms() + (
                MAX_BUMP_DRIFT_MS
            ):
                self.bumps.set(target, bump)
            self.records.add(target, peer.public_key, record)
        if announce.refresh is not None:
            self.refreshes.set(announce.refresh, _Refresh(target, record, announce_self))
        return _STORED

    def _on_refresh(self, link: bytes, request: Request) -> Reply | None:
        """A refresh-only announce: ``link`` is the preimage of the refresh hash stored with
        the record, so only its announcer can extend the record; the link is then the one
        the next refresh must hash to."""
        refresh = self.refreshes.get(hash32(link))
        if refresh is None:
            return None
        target, record = refresh.target, refresh.record
        public_key = record[:32]
        if refresh.announce_self:
            self.forwards.set(target, Forward(request.from_address, record))
            self.records.remove(target, public_key)
        else:
            self.records.add(target, public_key, record)
        self.refreshes.delete(hash32(link))
        self.refreshes.set(link, refresh)
        return _STORED

    def on_unannounce(self, request: Request, node_id: bytes) -> Reply | None:
        target, token = request.target, request.token
        if target is None or token is None:
            return None
        announce = _decode_announce(request.value)
        if announce is None or announce.peer is None or announce.signature is None:
            return None
        peer = announce.peer
        if not verify_unannounce(
            announce.signature, target, node_id, token, peer, announce.refresh
        ):
            return None
        self.unannounce(target, peer.public_key)
        return _STORED

    def unannounce(self, target: bytes, public_key: bytes) -> None:
        """Forget ``public_key``'s record under ``target`` (also done for our own key)."""
        if hash32(public_key) == target:
            self.forwards.delete(target)
        self.records.remove(target, public_key)

    # -- values ---------------------------------------------------------------------------

    def on_mutable_get(self, request: Request) -> Reply | None:
        if request.target is None or request.value is None:
            return None
        try:
            seq = decode_mutable_get_request(request.value)
        except CompactDecodeError:
            return None
        stored = self.mutables.get(request.target)
        if stored is None:
            return Reply()
        local = decode_mutable_get_response(stored)
        return Reply(stored if local.seq >= seq else None)

    def on_mutable_put(self, request: Request) -> Reply | None:
        if request.target is None or request.token is None or request.value is None:
            return None
        try:
            put = decode_mutable_put_request(request.value)
        except CompactDecodeError:
            return None
        if hash32(put.public_key) != request.target:
            return None
        if not verify_mutable(put.public_key, put.seq, put.value, put.signature):
            return None
        stored = self.mutables.get(request.target)
        if stored is not None:
            existing = decode_mutable_get_response(stored)
            if existing.seq == put.seq and existing.value != put.value:
                return Reply(error=RemoteError.SEQ_REUSED, token=False)
            if put.seq < existing.seq:
                return Reply(error=RemoteError.SEQ_TOO_LOW, token=False)
        response = MutableGetResponse(put.seq, put.value, put.signature)
        self.mutables.set(request.target, encode_mutable_get_response(response))
        return Reply()

    def on_immutable_get(self, request: Request) -> Reply | None:
        if request.target is None:
            return None
        return Reply(self.immutables.get(request.target))

    def on_immutable_put(self, request: Request) -> Reply | None:
        if request.target is None or request.token is None or request.value is None:
            return None
        if hash32(request.value) != request.target:
            return None
        self.immutables.set(request.target, request.value)
        return Reply()


def _decode_announce(value: bytes | None) -> Announce | None:
    if value is None:
        return None
    try:
        return decode_announce(value)
    except CompactDecodeError:
        return None
