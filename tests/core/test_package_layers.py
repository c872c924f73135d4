"""The packages of `lollma_tui.core` import each other in one direction only (no cycles)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import lollma_tui.core

CORE = Path(lollma_tui.core.__file__).parent


def package_of(module: str) -> str | None:
    """`lollma_tui.core.chat.store` → "chat"; None for names outside the core or the core itself."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["lollma_tui", "core"] else None


def core_imports() -> dict[str, set[str]]:
    """Package → the other core packages it imports, at module level or inside functions."""
    graph: dict[str, set[str]] = {}
    for path in (p for p in CORE.rglob("*.py*") if p.suffix in (".py", ".pyi")):
        relative = path.relative_to(CORE)
        own = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        targets = graph.setdefault(own, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            targets.update(p for name in names if (p := package_of(name)) is not None and p != own)
    # `from lollma_tui.core import paths` names a module, not a package: keep what exists.
    known = {p.name for p in CORE.iterdir() if p.is_dir()} | {p.stem for p in CORE.glob("*.py")}
    return {own: targets & known for own, targets in graph.items()}


def test_core_packages_form_layers_without_cycles() -> None:
    graph = core_imports()
    assert {"chat", "session", "backends", "models"} <= set(graph)
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as error:
        raise AssertionError(f"core packages import each other in a cycle: {error.args[1]}") from None
    # The chat commands build on the session, never the other way round.
    assert order.index("session") < order.index("chat")
