"""Key ownership: which member of a topic is responsible for a key, and actions run there.

The members of a topic are this swarm and the peers it is connected to under the topic.
:func:`responsible` picks one of them for a key by **rendezvous hashing** (highest random
weight): every member gets the score ``blake2b(member + key)`` and the highest wins.

Why rendezvous rather than a consistent-hash ring: both move only the keys of a member
that joins or leaves, but rendezvous needs no ring state and no virtual nodes to spread
keys evenly (each key is a fresh draw over the members), and it ranks *all* members, so
the next ``n`` in line are natural replicas (:func:`ranked`). Its cost is one hash per
member and key, which is nothing for the tens to hundreds of peers of a topic. Two peers
that see the same members compute the same owner, with no coordination; while membership
changes (a peer joining, a connection dropping), views can differ for a moment, so a
remote action is checked by its receiver (``not-responsible`` if it disagrees).

:class:`Ownership` puts this on a swarm, with remote actions over :mod:`p2pswarm.rpc`::

    owners = Ownership(swarm, topic, rpc)

    @owners.action("put")
    def put(key: bytes, value: object, caller: bytes) -> None:
        store[key] = value

    await owners.call(b"user:42", "put", {"name": "Ada"})   # runs on the responsible peer
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from .errors import RemoteError
from .keys import check_topic
from .rpc import RPC

if TYPE_CHECKING:
    from .swarm.swarm import Swarm

__all__ = ("MAX_KEY_SIZE", "Action", "Ownership", "ranked", "responsible", "score")

#: Largest key an action takes (bytes).
MAX_KEY_SIZE: Final = 1024

#: ``action(key, payload, caller_public_key)``: sync or async; its result goes back.
Action = Callable[[bytes, Any, bytes], Any]


def score(key: bytes, member: bytes) -> int:
    """``member``'s weight for ``key``: the first 8 bytes of ``blake2b(member + key)``."""
    digest = hashlib.blake2b(member + key, digest_size=8, person=b"p2pswarm-own").digest()
    return int.from_bytes(digest, "big")


def ranked(key: bytes, members: Iterable[bytes], n: int | None = None) -> list[bytes]:
    """``members`` from most to least responsible for ``key`` (the first ``n``); ties,
    which need equal 64-bit hashes, go to the smaller public key."""
    order = sorted(set(members), key=lambda m: (-score(key, m), m))
    return order if n is None else order[:n]


def responsible(key: bytes, members: Iterable[bytes]) -> bytes | None:
    """The member responsible for ``key``, or None when there are no members."""
    best: tuple[int, bytes] | None = None
    for member in set(members):
        candidate = (score(key, member), member)
        if best is None or candidate[0] > best[0] or (candidate[0] == best[0] and member < best[1]):
            best = candidate
    return None if best is None else best[1]


def _check_key(key: object) -> bytes:
    if not isinstance(key, bytes | bytearray | memoryview):
        raise TypeError(f"key must be bytes, got {type(key).__name__}")
    key = bytes(key)
    if len(key) > MAX_KEY_SIZE:
        raise ValueError(f"key is {len(key)} bytes, above {MAX_KEY_SIZE}")
    return key


class Ownership:
    """Who owns which key among ``topic``'s members, and actions run on the owner.

    ``rpc`` carries remote actions (an :class:`~p2pswarm.rpc.RPC` of the same swarm, made
    before joining); its methods are named ``<namespace>.<action>``.
    """

    def __init__(self, swarm: Swarm, topic: bytes, rpc: RPC, *, namespace: str = "own") -> None:
        self.swarm = swarm
        self.topic = check_topic(topic)
        self.rpc = rpc
        self.namespace = namespace
        self._actions: dict[str, Action] = {}

    # -- who -------------------------------------------------------------------------------

    def members(self) -> list[bytes]:
        """This swarm and every connected peer known under the topic, that speaks RPC."""
        out = [self.swarm.key_pair.public_key]
        for conn in self.swarm.connections:
            key = conn.remote_public_key
            info = self.swarm.peers.get(key)
            if info is not None and self.topic in info.topics and key in self.rpc.peers:
                out.append(key)
        return out

    def responsible_peer(self, key: bytes) -> bytes:
        """The public key of the member responsible for ``key`` (perhaps our own)."""
        owner = responsible(_check_key(key), self.members())
        assert owner is not None  # we are always a member
        return owner

    def replicas(self, key: bytes, n: int) -> list[bytes]:
        """The ``n`` members most responsible for ``key``, the owner first."""
        return ranked(_check_key(key), self.members(), n)

    def is_mine(self, key: bytes) -> bool:
        return self.responsible_peer(key) == self.swarm.key_pair.public_key

    # -- actions ---------------------------------------------------------------------------

    def action(self, name: str) -> Callable[[Action], Action]:
        """Register ``fn(key, payload, caller)`` as the action ``name`` (a decorator)."""

        def register(fn: Action) -> Action:
            self._actions[name] = fn
            self.rpc.handle(f"{self.namespace}.{name}", self._remote(name, fn))
            return fn

        return register

    async def call(
        self,
        key: bytes,
        name: str,
        payload: Any = None,
        *,
        timeout: float | None = 10.0,  # noqa: ASYNC109 (the request's own bound)
    ) -> Any:
        """Run action ``name`` for ``key`` on the responsible member and return its result:
        here when it is us, else as a request to that peer.

        :raises ~p2pswarm.errors.RemoteError: the action raised there, or that peer does
            not hold itself responsible (code ``not-responsible``: membership was moving;
            call again)
        """
        key = _check_key(key)
        fn = self._actions.get(name)
        if fn is None:
            raise KeyError(f"no action {name!r} registered")
        owner = self.responsible_peer(key)
        me = self.swarm.key_pair.public_key
        if owner == me:
            return await _maybe_await(fn(key, payload, me))
        return await self.rpc.request(
            f"{self.namespace}.{name}",
            {"key": key.hex(), "payload": payload},
            peer=owner,
            timeout=timeout,
        )

    def _remote(self, name: str, fn: Action) -> Callable[[Any, Any], Awaitable[Any]]:
        async def handler(request: Any, peer: Any) -> Any:
            if not isinstance(request, dict) or not isinstance(request.get("key"), str):
                raise RemoteError("bad-request", "expected {key: hex, payload}")
            try:
                key = _check_key(bytes.fromhex(request["key"]))
            except ValueError as exc:
                raise RemoteError("bad-request", str(exc)) from None
            if not self.is_mine(key):
                raise RemoteError("not-responsible", "another member owns this key here")
            caller = getattr(peer, "public_key", b"")
            return await _maybe_await(fn(key, request.get("payload"), caller))

        return handler

    def __repr__(self) -> str:
        return f"<Ownership {self.topic.hex()[:16]}… members={len(self.members())}>"


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value
