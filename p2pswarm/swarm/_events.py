"""Application callbacks: registered as decorators, sync or async, isolated from the swarm.

A callback that raises is logged on the ``p2pswarm.swarm`` logger and otherwise ignored: an
application bug in an ``on_update`` or ``on_ban`` callback must not take the swarm down.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

__all__ = ("CallbackList", "call_maybe_async")

logger = logging.getLogger("p2pswarm.swarm")

F = TypeVar("F", bound=Callable[..., Any])


async def call_maybe_async(fn: Callable[..., Any], *args: object) -> Any:
    """Call ``fn``; await the result when it is awaitable."""
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


class CallbackList(Generic[F]):
    """An ordered set of callbacks for one event."""

    __slots__ = ("_callbacks", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._callbacks: list[F] = []

    def add(self, callback: F) -> F:
        """Register ``callback`` (once); returns it, so this works as a decorator."""
        if not callable(callback):
            raise TypeError(f"{self._name} callback must be callable")
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        return callback

    def remove(self, callback: F) -> bool:
        """Unregister ``callback``; False when it was not registered."""
        if callback in self._callbacks:
            self._callbacks.remove(callback)
            return True
        return False

    def __bool__(self) -> bool:
        return bool(self._callbacks)

    def __iter__(self) -> Any:
        return iter(list(self._callbacks))

    def emit(
        self, spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], bool], *args: object
    ) -> None:
        """Call every callback now; the async ones continue in tasks made by ``spawn``
        (which returns False when it cannot start a task any more: then they are dropped)."""
        for callback in list(self._callbacks):
            try:
                result = callback(*args)
            except Exception:
                logger.exception("%s callback %r raised", self._name, callback)
                continue
            if inspect.isawaitable(result) and not spawn(_guard(self._name, callback, result)):
                close = getattr(result, "close", None)
                if close is not None:
                    close()


def _guard(
    name: str, callback: object, awaitable: Awaitable[Any]
) -> Callable[[], Coroutine[Any, Any, None]]:
    async def run() -> None:
        try:
            await awaitable
        except Exception:
            logger.exception("%s callback %r raised", name, callback)

    return run
