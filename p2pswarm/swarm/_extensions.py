"""Services that live above the swarm but that its methods reach: a hook, not an import.

Node info travels over protomux channels (:mod:`p2pswarm.node_info`, above
:mod:`p2pswarm.mux`, which is above the swarm), yet ``swarm.set_info()`` is the swarm's
own method. The swarm therefore only knows the small interface below; the node info
module registers its factory here when it is imported (``import p2pswarm`` imports it),
so the layers keep pointing one way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

__all__ = ("NodeInfoService", "node_info", "register_node_info")


class NodeInfoService(Protocol):
    """What ``Swarm.set_info``, ``Swarm.info`` and ``Swarm.on_info`` need."""

    info: dict[str, Any]

    def set(self, info: Mapping[str, Any]) -> None: ...

    def on_info(self, callback: Callable[..., Any]) -> Any: ...


_factory: list[Callable[[Any], NodeInfoService]] = []


def register_node_info(factory: Callable[[Any], NodeInfoService]) -> None:
    """Called once by :mod:`p2pswarm.node_info` at import."""
    _factory[:] = [factory]


def node_info(swarm: object) -> NodeInfoService:
    """The node info service of ``swarm`` (a :class:`~p2pswarm.swarm.Swarm`)."""
    if not _factory:
        raise RuntimeError("p2pswarm.node_info is not imported (import p2pswarm does it)")
    return _factory[0](swarm)
