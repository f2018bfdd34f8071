"""The public surface: what ``import p2pswarm`` promises, and that every module declares it."""

from __future__ import annotations

import importlib
import pkgutil

import p2pswarm


def _modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(p2pswarm.__path__, prefix="p2pswarm.")
        if not info.name.endswith("__main__")
    )


def test_every_exported_name_exists() -> None:
    missing = [name for name in p2pswarm.__all__ if not hasattr(p2pswarm, name)]
    assert missing == []
    assert len(set(p2pswarm.__all__)) == len(p2pswarm.__all__)


def test_every_public_module_declares_all_as_a_tuple() -> None:
    without = []
    for name in _modules():
        module = importlib.import_module(name)
        declared = getattr(module, "__all__", None)
        if not isinstance(declared, tuple):
            without.append(name)
            continue
        absent = [item for item in declared if not hasattr(module, item)]
        assert absent == [], f"{name}.__all__ names missing attributes: {absent}"
    assert without == []


def test_the_design_names_are_at_the_top_level() -> None:
    for name in (
        "Swarm",
        "KeyPair",
        "PeerInfo",
        "PeerDiscovery",
        "Connection",
        "connect_tcp",
        "create_tcp_listener",
        "topic",
        "errors",
        "testing",
        "P2PSwarmError",
    ):
        assert name in p2pswarm.__all__, name
    assert callable(p2pswarm.testing.create_testnet)


def test_errors_are_one_tree() -> None:
    for name in p2pswarm.errors.__all__:
        error = getattr(p2pswarm.errors, name)
        assert issubclass(error, p2pswarm.P2PSwarmError), name
        assert error.__doc__, f"{name} needs a docstring saying when it is raised"
