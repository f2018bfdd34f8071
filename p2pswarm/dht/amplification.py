"""Bounded reflection: a reply is never much larger than the request that drew it (pure).

UDP source addresses can be forged, so a DHT that answers a 39-byte LOOKUP with 4 KB of
signed records is a 100x amplifier pointed at whoever's address the attacker writes in.
The rule here is QUIC's (RFC 9000, section 8): a reply to a sender whose address is not
proven is at most :data:`AMPLIFICATION_FACTOR` times the request's size. A sender proves
its address with a round-trip token the responder gave it earlier (:mod:`.tokens`; only a
host that receives datagrams at that IP could have read it); then full replies flow.

So normal lookups keep their latency, an honest requester does not wait for a token
first: a request without one carries zero padding (:func:`pad_target`) large enough to pay
for a full reply (1232 bytes for a record query, the largest datagram no IPv6 path
fragments), and then reuses the token from that reply for the next minute
(:class:`ReplyTokens`) instead of padding. A reply that does not fit its budget keeps its
records first (the point of a record query) and as many contacts as fit, and sets
*truncated* if records were left out; the requester then asks again with the token the
reply carried (:func:`bound_reply`). A request too small to pay even for an empty reply gets
no reply at all.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import replace
from typing import Final

from .messages import (
    MAX_NODES_PER_REPLY,
    NODE_ID_SIZE,
    TOKEN_SIZE,
    Command,
    Response,
    encode_address,
    encode_host,
)

__all__ = (
    "AMPLIFICATION_FACTOR",
    "REPLY_TOKEN_REUSE",
    "ReplyTokens",
    "bound_reply",
    "pad_target",
)

#: An unproven sender gets at most this many bytes back per byte it sent (QUIC's figure).
AMPLIFICATION_FACTOR: Final = 3
#: Seconds a requester reuses a reply token. Tokens stay valid for one to two rotations
#: (60 s by default); a stale one only costs one truncated reply and a second ask.
REPLY_TOKEN_REUSE: Final = 30.0
MAX_REPLY_TOKENS: Final = 1024
#: The largest UDP payload that crosses every IPv6 path unfragmented (1280 - 40 - 8).
RECORD_QUERY_SIZE: Final = 1232

# Size of a reply with every optional field and no contacts or records (IPv6 ``to``).
_HEADER_SIZE: Final = 7
_LARGEST_BARE_REPLY: Final = _HEADER_SIZE + 19 + NODE_ID_SIZE + 1 + TOKEN_SIZE + 1 + 1
_LARGEST_CONTACT: Final = NODE_ID_SIZE + 19


def _pays_for(reply_size: int) -> int:
    return math.ceil(reply_size / AMPLIFICATION_FACTOR)


#: Request size (padding included) that pays for the largest honest reply, per command.
_PAD_TARGETS: Final = {
    Command.PING: _pays_for(_LARGEST_BARE_REPLY - TOKEN_SIZE),
    Command.FIND_NODE: _pays_for(_LARGEST_BARE_REPLY + MAX_NODES_PER_REPLY * _LARGEST_CONTACT),
    Command.LOOKUP: RECORD_QUERY_SIZE,
    Command.FIND_PEER: RECORD_QUERY_SIZE,
}


def pad_target(command: Command) -> int:
    """The size a request without a token is padded to; 0 for announces (large already)."""
    return _PAD_TARGETS.get(command, 0)


def bound_reply(response: Response, budget: int) -> Response | None:
    """``response`` cut to at most ``budget`` encoded bytes, or None if even a bare reply
    would not fit. Records are kept first, then contacts (closest first); ``truncated``
    is set when records were left out."""
    bare = replace(response, nodes=(), records=())
    room = budget - len(bare.encode())
    if room < 0:
        return None
    records = []
    for host, blob in response.records:
        size = len(encode_host(host)) + 2 + len(blob)
        if size > room:
            break
        records.append((host, blob))
        room -= size
    nodes = []
    for contact in response.nodes:
        size = NODE_ID_SIZE + len(encode_address(contact.host, contact.port))
        if size > room:
            break
        nodes.append(contact)
        room -= size
    truncated = response.truncated or len(records) < len(response.records)
    return replace(response, nodes=tuple(nodes), records=tuple(records), truncated=truncated)


class ReplyTokens:
    """The requester's side: the last token each responder gave us, reused for a while.

    Bounded (least recently stored out first), since the responders a query talks to are
    named by other nodes' replies.
    """

    __slots__ = ("_tokens", "max_age", "max_entries")

    def __init__(
        self, *, max_age: float = REPLY_TOKEN_REUSE, max_entries: int = MAX_REPLY_TOKENS
    ) -> None:
        self.max_age = max_age
        self.max_entries = max_entries
        self._tokens: OrderedDict[tuple[str, int], tuple[bytes, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tokens)

    def get(self, responder: tuple[str, int], now: float) -> bytes:
        """The token to present to ``responder``, or b"" (then pad instead)."""
        entry = self._tokens.get(responder)
        if entry is None:
            return b""
        token, received = entry
        if not 0 <= now - received < self.max_age:
            del self._tokens[responder]
            return b""
        return token

    def put(self, responder: tuple[str, int], token: bytes, now: float) -> None:
        self._tokens.pop(responder, None)
        self._tokens[responder] = (token, now)
        while len(self._tokens) > self.max_entries:
            self._tokens.popitem(last=False)
