"""
The project's modules import one way: no import circle among the modules of ``plugin_app``,
``tutor_exportbulk`` and ``bench``. Every import counts, also those inside functions and under
``TYPE_CHECKING`` (they are how circles hide); migrations and tests do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("plugin_app", "tutor_exportbulk", "bench")


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _imported(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules that ``module`` imports, wherever the import statement stands."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import mod`` imports the module pkg.mod; ``from mod import name``, mod.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
            ]
        else:
            continue
        found.update(name for name in names if name in known and name != module)
    return found


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
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
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def import_graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imported(name, path, known) for name, path in known.items()}


def test_the_project_has_no_import_circle():
    assert _circles(import_graph()) == []


def test_the_check_sees_a_circle_made_by_an_import_inside_a_function():
    graph = import_graph()
    assert "plugin_app.lifecycle" in graph["plugin_app.runners"]
    graph["plugin_app.lifecycle"].add("plugin_app.runners")  # what ``dispatch`` once did, in a function
    assert ["plugin_app.lifecycle", "plugin_app.runners"] in _circles(graph)


def test_the_kinds_and_the_tasks_are_above_the_lifecycle():
    graph = import_graph()
    for kind in ("exports", "backups", "restores", "uploads", "tasks", "runners"):
        assert f"plugin_app.{kind}" not in graph["plugin_app.lifecycle"]
    assert not {"plugin_app.exports", "plugin_app.backups", "plugin_app.restores"} & graph["plugin_app.tasks"]
