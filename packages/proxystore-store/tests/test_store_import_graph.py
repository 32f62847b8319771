"""The store member's modules import one another without a cycle.

Every `import` statement counts: module level, inside functions and under
`if TYPE_CHECKING:` alike, so a cycle cannot hide behind a lazy import. Imports of
the package itself (`from proxystore.store import X`) count as imports of its
`__init__`.
"""

from __future__ import annotations

import ast
import pathlib

import proxystore.store

PACKAGE = "proxystore.store"
SRC = pathlib.Path(proxystore.store.__file__).parent


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([PACKAGE, *parts])


def _imports(path: pathlib.Path, known: set[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from pkg import mod` imports the submodule `pkg.mod` when there is one.
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        found.update(name for name in names if name in known)
    return found


def import_graph() -> dict[str, set[str]]:
    """Map each module of the store member to the member's modules it imports."""
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    known = set(paths)
    return {name: _imports(path, known) - {name} for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle as a list of modules, or `None` when there is none."""
    done: set[str] = set()
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in stack:
            return [*stack[stack.index(node) :], node]
        if node in done:
            return None
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            cycle = visit(nxt)
            if cycle is not None:
                return cycle
        stack.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle is not None:
            return cycle
    return None


def test_the_walk_sees_the_store_modules_and_their_imports() -> None:
    graph = import_graph()
    assert "proxystore.store.base" in graph
    assert "proxystore.store.factory" in graph["proxystore.store.base"]
    assert "proxystore.store.protocols" in graph["proxystore.store.factory"]


def test_find_cycle_reports_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_store_member_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_pattern_modules_do_not_import_base() -> None:
    graph = import_graph()
    patterns = [
        "_registry",
        "factory",
        "future",
        "lifetimes",
        "ref",
        "metrics",
        "utils",
    ]
    for name in patterns:
        assert "proxystore.store.base" not in graph[f"{PACKAGE}.{name}"], name
