"""The layers hold: each part of the package imports only the parts below it, and no module
takes part in an import circle.

Read with ``ast`` (nothing is imported), so an ``if TYPE_CHECKING:`` import counts too: a
circle that only the type checker sees is still two modules that cannot be read apart.

A *unit* is a key of :data:`ALLOWED`: a package (with everything under it) or a single
module. A module belongs to the longest unit its name starts with. A new package or
top-level module gets a line in :data:`ALLOWED`, naming the units it may import; a
subpackage (``protocol/udx``, ``transports/udx``) is already covered by its parent's line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import p2pswarm

PACKAGE = Path(p2pswarm.__file__).parent
ROOT = "p2pswarm"

#: Plain data and helpers every layer may use.
BASE = frozenset({"p2pswarm.errors", "p2pswarm.keys", "p2pswarm.peer_record", "p2pswarm._files"})
#: The interface a discovery network implements (a module of its own, below every network).
BACKEND_INTERFACE = "p2pswarm.networks.discovery_backend"
#: What a discovery network may use: the base and the interface it implements.
NETWORK = BASE | {BACKEND_INTERFACE}

#: unit -> the other units it may import, bottom up.
ALLOWED: dict[str, frozenset[str]] = {
    "p2pswarm.errors": frozenset(),
    "p2pswarm._files": frozenset(),
    "p2pswarm.peer_record": frozenset(),
    "p2pswarm.keys": frozenset({"p2pswarm.errors", "p2pswarm._files"}),
    # Sans-IO wires (tests/protocol/test_sans_io.py also forbids any I/O import there).
    "p2pswarm.protocol": BASE,
    # The encrypted stream over any transport stream.
    "p2pswarm.connection": BASE | {"p2pswarm.protocol"},
    # Transports: the Dialer/Transport interfaces, the handshake pump, TCP (UDX next).
    "p2pswarm.transports": BASE | {"p2pswarm.protocol", "p2pswarm.connection"},
    # Discovery networks: the interface, then each network, then the choice among them.
    BACKEND_INTERFACE: BASE,
    "p2pswarm.dht": NETWORK,
    # The HyperDHT-compatible network: dht-rpc nodes on the sans-IO codecs, then HyperDHT;
    # connect/serve by key make Connections over UDX streams on the node's own sockets.
    "p2pswarm.hyperdht": NETWORK
    | {"p2pswarm.protocol", "p2pswarm.connection", "p2pswarm.transports"}
    # relayThrough: the blind relay's client and server, on mux channels.
    | {"p2pswarm.relay", "p2pswarm.mux"},
    "p2pswarm.networks": NETWORK | {"p2pswarm.dht"},
    # The swarm sees transports and networks only through the packages' interfaces.
    "p2pswarm.swarm": BASE
    | {
        "p2pswarm.connection",
        "p2pswarm.transports",
        "p2pswarm.networks",
        BACKEND_INTERFACE,
        "p2pswarm.peerbook",
    },
    # The persistent peer book (pure tables and sqlite; the swarm drives it).
    "p2pswarm.peerbook": BASE,
    "p2pswarm.testing": BASE | {"p2pswarm.dht", "p2pswarm.swarm"},
    # Channels over a connection (protomux); SwarmMux shares one per swarm connection.
    "p2pswarm.mux": BASE | {"p2pswarm.protocol", "p2pswarm.connection", "p2pswarm.swarm"},
    # Requests and messages on mux channels, across a swarm's peers.
    "p2pswarm.rpc": BASE | {"p2pswarm.protocol", "p2pswarm.mux", "p2pswarm.swarm"},
    "p2pswarm.gossip": BASE | {"p2pswarm.protocol", "p2pswarm.mux", "p2pswarm.swarm"},
    "p2pswarm.node_info": BASE | {"p2pswarm.mux", "p2pswarm.swarm"},
    "p2pswarm.ownership": BASE | {"p2pswarm.rpc", "p2pswarm.swarm"},
    # Blind relay (JS blind-relay) on mux channels and UDX streams.
    "p2pswarm.relay": BASE
    | {"p2pswarm.protocol", "p2pswarm.connection", "p2pswarm.transports", "p2pswarm.mux"},
    # The command line, on top of everything.
    "p2pswarm.commands": BASE
    | {
        "p2pswarm.connection",
        "p2pswarm.dht",
        "p2pswarm.networks",
        BACKEND_INTERFACE,
        "p2pswarm.swarm",
    },
    "p2pswarm.cli": BASE | {"p2pswarm.commands", "p2pswarm.networks"},
    "p2pswarm.__main__": frozenset({"p2pswarm.cli"}),
}


def module_names() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    names: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = (ROOT, *path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


MODULES = module_names()


def unit_of(module: str) -> str | None:
    """The longest key of :data:`ALLOWED` that is ``module`` or a package holding it."""
    best = None
    for unit in ALLOWED:
        if (module == unit or module.startswith(unit + ".")) and (
            best is None or len(unit) > len(best)
        ):
            best = unit
    return best


def imports_of(module: str) -> Iterator[tuple[int, str]]:
    """(line, imported module of ours) for every import statement in ``module``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == ROOT or alias.name.startswith(ROOT + "."):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                assert node.level <= len(parts), f"{module}:{node.lineno} imports above {ROOT}"
                base = parts[: len(parts) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not (target == ROOT or target.startswith(ROOT + ".")):
                continue
            # ``from . import x`` imports the submodule x when there is one.
            submodules = [f"{target}.{alias.name}" for alias in node.names]
            found = [name for name in submodules if name in MODULES]
            for name in found or [target]:
                yield node.lineno, name


def test_every_module_belongs_to_a_layer() -> None:
    orphans = [name for name in MODULES if name != ROOT and unit_of(name) is None]
    assert orphans == [], f"add these to ALLOWED in {__file__}: {orphans}"


def test_imports_follow_the_layers() -> None:
    bad = []
    for module in MODULES:
        if module == ROOT:
            continue  # the package's own __init__ re-exports the public names of every layer
        unit = unit_of(module)
        assert unit is not None
        for line, target in imports_of(module):
            assert target in MODULES, f"{module}:{line} imports {target}, which does not exist"
            other = unit_of(target)
            if other != unit and other not in ALLOWED[unit]:
                bad.append(f"{module}:{line} imports {target} ({unit} may not use {other})")
    assert bad == []


def test_no_import_cycles() -> None:
    graph = {module: sorted({t for _, t in imports_of(module)} - {module}) for module in MODULES}
    cycles = []
    done: set[str] = set()

    def visit(module: str, stack: list[str]) -> None:
        if module in stack:
            cycles.append(" -> ".join([*stack[stack.index(module) :], module]))
            return
        if module in done:
            return
        stack.append(module)
        for target in graph[module]:
            visit(target, stack)
        stack.pop()
        done.add(module)

    for module in graph:
        visit(module, [])
    assert cycles == []


def test_the_map_is_not_vacuous() -> None:
    """The graph has the edges the checks guard, and new subpackages fall in their layer."""
    edges = {(m, t) for m in MODULES for _, t in imports_of(m)}
    assert ("p2pswarm.swarm.swarm", "p2pswarm.swarm._connections") in edges
    assert ("p2pswarm.dht.node", "p2pswarm.dht.query") in edges
    assert ("p2pswarm.transports.tcp", "p2pswarm.transports._handshake") in edges
    assert unit_of("p2pswarm.protocol.udx.packet") == "p2pswarm.protocol"
    assert unit_of("p2pswarm.networks.discovery_backend") == BACKEND_INTERFACE
    assert "p2pswarm.swarm" not in ALLOWED["p2pswarm.transports"]
