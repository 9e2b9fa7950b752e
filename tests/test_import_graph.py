"""Imports run downward: no cycle among the package's module-level imports, and the API facade is imported
only by the front ends (CLI, web page) and the package's lazy public names."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hpc_agent"
FRONT_ENDS = {"hpc_agent.cli", "hpc_agent.ui.logic", "hpc_agent.ui.page", "hpc_agent.ui.command", "hpc_agent"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _graph(all_levels: bool = False) -> dict[str, set[str]]:
    """Module -> the package modules it imports at module level (or anywhere, with `all_levels`);
    `if TYPE_CHECKING:` imports are left out (they never run)."""
    modules = _modules()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        statements = list(ast.walk(tree)) if all_levels else list(tree.body)
        skipped = {id(n) for s in tree.body if isinstance(s, ast.If) and "TYPE_CHECKING" in ast.unparse(s.test)
                   for n in ast.walk(s)}
        deps: set[str] = set()
        for node in statements:
            if id(node) in skipped:
                continue
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}" if base else package
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            deps |= {o for t in targets if (o := owner(t)) and o.startswith("hpc_agent")}
        # a package importing its own submodules (re-exports) is its inside, not an edge
        graph[name] = {d for d in deps if d != name and not d.startswith(name + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_module_level_imports_have_no_cycle() -> None:
    graph = _graph()
    assert len(graph) > 60 and "hpc_agent.agent" in graph["hpc_agent.bench.sweep"]  # the walk sees the package
    assert _cycles(graph) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]  # and would see one


def test_only_the_front_ends_import_the_api() -> None:
    importers = {m for m, deps in _graph(all_levels=True).items() if "hpc_agent.api" in deps}
    assert importers <= FRONT_ENDS, importers - FRONT_ENDS
