"""The emulator's modules import each other without a cycle: every import counts, at module level,
under ``TYPE_CHECKING`` or inside a function, so a store never reaches back into the account."""

from __future__ import annotations

import ast
from pathlib import Path

EMULATOR = Path(__file__).parents[2] / "emulator"
PACKAGE = "emulator"


def _module_names() -> set[str]:
    return {f"{PACKAGE}.{path.stem}" for path in EMULATOR.glob("*.py") if path.stem != "__init__"}


def import_graph() -> dict[str, set[str]]:
    """Module -> the emulator modules it imports (the package's own ``__init__`` left out: it only
    re-exports, and nothing in the package imports it for a name)."""
    modules = _module_names()
    graph: dict[str, set[str]] = {}
    for name in sorted(modules):
        tree = ast.parse((EMULATOR / f"{name.split('.')[1]}.py").read_text())
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
                targets |= {f"{node.module}.{alias.name}" for alias in node.names}
        imported_package = PACKAGE in targets and not (targets & modules)
        assert not imported_package or name == f"{PACKAGE}.__main__", f"{name} imports the package façade"
        graph[name] = (targets & modules) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of modules (first == last), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return None
        for target in sorted(graph.get(node, ())):
            cycle = visit(target, path + [node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


def test_the_emulator_has_no_import_cycle():
    graph = import_graph()
    assert f"{PACKAGE}.state" in graph and f"{PACKAGE}.budgets" in graph
    assert find_cycle(graph) is None, find_cycle(graph)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_stores_do_not_know_the_account():
    """Budget policies, rule sets, budgets and the journal never import the account (state) that
    holds them: they get its lock and journal, not its internals."""
    graph = import_graph()
    for store in ("budget_policies", "rule_sets", "budgets", "journal", "back_doors"):
        reachable, todo = set(), [f"{PACKAGE}.{store}"]
        while todo:
            for target in graph[todo.pop()] - reachable:
                reachable.add(target)
                todo.append(target)
        assert f"{PACKAGE}.state" not in reachable, store
