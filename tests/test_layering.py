"""The design map's dependency rules, checked on the source: no import cycle between modules, and
each package imports only from the layers below it (docs/design.md). Every import counts: lazy
ones inside functions and TYPE_CHECKING ones too, since they are the same coupling."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Highest first; a package may import from any package of a later row, never an earlier one.
LAYERS: list[set[str]] = [
    {"cli"},
    {"router", "planner"},  # planner: a client of the router's admin API and workers' /metrics
    {"server", "bench", "eval", "train", "sim"},
    {"profiling"},  # measures the engine for the simulator
    {"openai"},
    {"flywheel"},
    {"llm"},
    {"reasoning"},
    {"engine"},
    {"models"},
    {"layers"},
    {"distributed"},
    {"kernels"},
]
LEAVES = {"tasks", "config", "errors", "assets", "version"}  # import nothing above themselves
# The benchmark client measures any OpenAI-compatible server: it never imports the engine.
FORBIDDEN = {"bench": {"engine", "models", "layers", "kernels", "reasoning", "llm", "openai", "server"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str) -> set[str]:
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module.split(".")[0] == "ponder"}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in (SRC / "ponder").rglob("*.py") if p.name != "__main__.py"}
    graph = {}
    for name, path in paths.items():
        # `from ponder.x import y` names module ponder.x.y when it exists, else ponder.x.
        graph[name] = {m for m in imports_of(path, name) if m in paths and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def rank(package: str) -> int | None:
    for position, layer in enumerate(LAYERS):
        if package in layer:
            return position
    return None


def test_no_module_imports_itself_back() -> None:
    assert cycles(import_graph()) == []


def test_packages_import_only_downward() -> None:
    graph = import_graph()
    known = set().union(*LAYERS) | LEAVES
    wrong = []
    for module, targets in graph.items():
        source = package_of(module)
        if not source:
            continue  # ponder/__init__: the public API re-exports from every layer
        assert source in known, f"{source} is missing from the layer map (docs/design.md)"
        for target in targets:
            dest = package_of(target)
            if dest == source or not dest:
                if not dest and source in known - {"cli"}:
                    wrong.append(f"{module} -> {target} (the top-level package)")
                continue
            if dest in FORBIDDEN.get(source, ()):
                wrong.append(f"{module} -> {target}")
            elif source in LEAVES:
                if dest not in LEAVES:
                    wrong.append(f"{module} -> {target} (a leaf imports only leaves)")
            elif dest not in LEAVES and rank(dest) <= rank(source):  # type: ignore[operator]
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_the_walk_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ponder.engine import request\n"
        "def f():\n    import ponder.llm\n"
        "from . import sibling\n"
    )
    found = imports_of(source, "ponder.openai.m")
    assert {"ponder.engine.request", "ponder.llm", "ponder.openai.sibling"} <= found
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
