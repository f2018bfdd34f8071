"""The I/O half of an iterative query: asks the nodes :class:`~.query.QueryPolicy` picks.

``node.query(target, command, ...)`` returns a :class:`Query`. Iterating it yields every
successful reply (error 0) as it arrives (``async for reply in q``); ``await q.finished()``
runs it to the end instead. Either way the walk runs in the node's task group, so an
abandoned iterator does not stop it (it is bounded by ``max_visits`` and the request
timeouts); ``q.cancel()`` stops it early.

With ``commit``, once the walk ends the mutating follow-up goes to each of the k closest
replies: ``commit(reply, query)`` returns an awaitable (usually ``node.request(...)`` with
``reply.token``); :func:`auto_commit` is dht-rpc's default (re-send the query's own command
with the reply's token). The query fails if no reply was close enough to commit to, or if
every commit failed, as in JS.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol

import anyio
import anyio.abc

from ..errors import DHTError, DHTTimeoutError
from ..protocol.compact import IPv4Address
from .query import QueryPolicy
from .routing import RoutingTable
from .rpc import Address, Peer, Reply

__all__ = ("Commit", "Query", "QueryHost", "auto_commit")

#: The mutating follow-up sent to one of the closest replies.
Commit = Callable[[Reply, "Query"], Awaitable[Any]]


class QueryHost(Protocol):
    """What a query needs from its node."""

    @property
    def table(self) -> RoutingTable: ...

    @property
    def concurrency(self) -> int: ...

    def bootstrap_peers(self) -> Sequence[Peer]: ...

    def accept_node(self, address: IPv4Address) -> bool: ...

    def start_task(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None: ...

    def send_down_hint(self, referrer: Address, down: Address) -> None: ...

    async def request(
        self,
        to: Address,
        command: int,
        *,
        internal: bool = False,
        target: bytes | None = None,
        value: bytes | None = None,
        token: bytes | None = None,
        retries: int = 3,
        on_cycle: Callable[[], None] | None = None,
    ) -> Reply: ...


async def auto_commit(reply: Reply, query: Query) -> Reply:
    """dht-rpc's ``commit: true``: the same command and value, with the reply's token."""
    if reply.token is None:
        raise DHTError("no token received for a closest node")
    return await query.host.request(
        reply.from_.address,
        query.command,
        internal=query.internal,
        target=query.target,
        value=query.value,
        token=reply.token,
    )


class Query:
    """One iterative query; see the module docstring."""

    def __init__(
        self,
        host: QueryHost,
        target: bytes,
        command: int,
        *,
        internal: bool = False,
        value: bytes | None = None,
        commit: Commit | None = None,
        nodes: Sequence[tuple[str, int]] | None = None,
        concurrency: int | None = None,
        retries: int = 5,
        max_visits: int = 500,
        on_reply: Callable[[Reply], None] | None = None,
    ) -> None:
        self.host = host
        self.target = target
        self.command = command
        self.internal = internal
        self.value = value
        self.retries = retries
        self._commit = commit
        self._on_reply = on_reply
        self._nodes = nodes
        self.policy: QueryPolicy[Reply] = QueryPolicy(
            target,
            k=host.table.k,
            concurrency=concurrency or host.concurrency,
            own_id=host.table.id,
            max_visits=max_visits,
        )
        #: Replies not yet taken by an iterator (at most one per visit).
        self._results: deque[Reply] = deque()
        self._arrived = anyio.Event()
        self._started = False
        self._done = anyio.Event()
        self._error: BaseException | None = None
        self._scope: anyio.CancelScope | None = None
        self._cancelled = False
        self._wake = anyio.Event()
        #: Replies to the commit requests, when there was a commit.
        self.commits: list[Any] = []

    # -- results ------------------------------------------------------------------------

    @property
    def closest_replies(self) -> list[Reply]:
        return self.policy.closest_replies

    @property
    def closest_nodes(self) -> list[Peer]:
        return [r.from_ for r in self.policy.closest_replies]

    @property
    def successes(self) -> int:
        return self.policy.successes

    @property
    def errors(self) -> int:
        return self.policy.errors

    @property
    def concurrency(self) -> int:
        return self.policy.concurrency

    @concurrency.setter
    def concurrency(self, value: int) -> None:
        self.policy.concurrency = value

    # -- running ------------------------------------------------------------------------

    def start(self) -> Query:
        if not self._started:
            self._started = True
            self.host.start_task(self._run)
        return self

    def cancel(self) -> None:
        """Stop the walk (and its commits); ``finished()`` then raises DHTError."""
        self._cancelled = True
        if self._scope is not None:
            self._scope.cancel()

    async def finished(self) -> None:
        """Run to the end (commits included); raises what made the query fail."""
        self.start()
        await self._done.wait()
        if self._error is not None:
            raise self._error

    def __aiter__(self) -> AsyncIterator[Reply]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Reply]:
        self.start()
        while True:
            while self._results:
                yield self._results.popleft()
            if self._done.is_set():
                break
            await self._arrived.wait()
            self._arrived = anyio.Event()
        await self.finished()

    async def _run(self) -> None:
        try:
            with anyio.CancelScope() as self._scope:
                if self._cancelled:
                    self._scope.cancel()
                await self._walk()
                if self._commit is not None:
                    await self._run_commits(self._commit)
            if self._scope.cancelled_caught:
                self._error = DHTError("the query was cancelled")
        except DHTError as exc:
            self._error = exc
        finally:
            self._done.set()
            self._arrived.set()

    def _seed(self) -> None:
        policy = self.policy
        if self._nodes is not None:
            for host, port in self._nodes:
                policy.add_seed(Peer(host, port))
            return
        self._seed_from_table()
        if policy.pending < policy.k:
            for peer in self.host.bootstrap_peers():
                policy.add_seed(peer)

    def _seed_from_table(self) -> None:
        policy = self.policy
        policy.mark_from_table()
        for node in self.host.table.closest(self.target, policy.k - policy.pending):
            policy.add_seed(Peer(node.host, node.port, node.id))

    def _poke(self) -> None:
        self._wake.set()

    async def _walk(self) -> None:
        policy = self.policy
        self._seed()
        async with anyio.create_task_group() as tg:
            while True:
                for peer in policy.next_visits():
                    tg.start_soon(self._visit, peer)
                if policy.done():
                    if policy.wants_table():
                        self._seed_from_table()
                        continue
                    break
                await self._wake.wait()
                self._wake = anyio.Event()
            tg.cancel_scope.cancel()  # slow requests still waiting are not needed

    async def _visit(self, peer: Peer) -> None:
        address = peer.address

        def on_cycle() -> None:
            self.policy.on_slow(address)
            self._poke()

        try:
            try:
                reply = await self.host.request(
                    address,
                    self.command,
                    internal=self.internal,
                    target=self.target,
                    value=self.value,
                    retries=self.retries,
                    on_cycle=on_cycle,
                )
            except DHTTimeoutError:
                self._hint(self.policy.on_error(address, True))
                return
            except DHTError:
                self._hint(self.policy.on_error(address, False))
                return
            closer = [a for a in reply.closer_nodes[: self.policy.k] if self.host.accept_node(a)]
            self._hint(
                self.policy.on_reply(address, reply.from_.id, reply.error == 0, closer, reply)
            )
            if reply.error == 0:
                if self._on_reply is not None:
                    self._on_reply(reply)
                self._results.append(reply)
                self._arrived.set()
        finally:
            self._poke()

    def _hint(self, hints: list[tuple[Address, Address]]) -> None:
        for referrer, down in hints:
            self.host.send_down_hint(referrer, down)

    async def _run_commits(self, commit: Commit) -> None:
        replies = self.closest_replies
        if not replies:
            raise DHTError("too few nodes responded")
        results: list[Any] = []
        failures: list[BaseException] = []

        async def one(reply: Reply) -> None:
            try:
                results.append(await commit(reply, self))
            except DHTError as exc:
                failures.append(exc)

        async with anyio.create_task_group() as tg:
            for reply in replies:
                tg.start_soon(one, reply)
        self.commits = results
        if not results and failures:
            raise failures[-1]
