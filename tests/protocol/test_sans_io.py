"""The protocol core does no I/O: nothing under p2pswarm/protocol (or what it imports from
the package) imports an event loop or a socket."""

from __future__ import annotations

import ast
from pathlib import Path

import p2pswarm

FORBIDDEN = {"anyio", "asyncio", "trio", "socket", "selectors", "sniffio"}
PACKAGE = Path(p2pswarm.__file__).parent


def imports_of(path: Path) -> tuple[set[str], set[Path]]:
    """Top-level module names imported by ``path``, and the package files it imports."""
    tree = ast.parse(path.read_text(), str(path))
    external: set[str] = set()
    internal: set[Path] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            external |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                assert node.module is not None
                external.add(node.module.split(".")[0])
                continue
            base = path.parent
            for _ in range(node.level - 1):
                base = base.parent
            parts = node.module.split(".") if node.module else []
            target = base.joinpath(*parts)
            candidates = [target.with_suffix(".py"), target / "__init__.py"]
            candidates += [target / f"{alias.name}.py" for alias in node.names]
            internal |= {c for c in candidates if c.is_file()}
    return external, internal


def test_protocol_imports_no_io() -> None:
    pending = sorted((PACKAGE / "protocol").rglob("*.py"))
    assert len(pending) >= 4
    seen: set[Path] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        external, internal = imports_of(path)
        bad = external & FORBIDDEN
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"
        pending += sorted(internal - seen)
    assert PACKAGE / "errors.py" in seen and PACKAGE / "keys.py" in seen
