"""Code outside ``providers/`` uses ``providers.core`` and the resource modules, never a private
module (``providers._x``): those may change shape without notice.  Tests are exempt (they test
the private helpers themselves)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPED = {"providers", "tests", ".venv", "venv", ".git"}


def _private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found += [
            f"{path.relative_to(ROOT)}:{node.lineno} {name}"
            for name in names
            if name.startswith("providers.") and name.split(".")[1].startswith("_")
        ]
    return found


def test_no_module_outside_providers_imports_a_private_providers_module():
    files = [p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).parts[0] not in SKIPPED]
    assert len(files) > 50  # the walk found the project
    assert [hit for path in files for hit in _private_imports(path)] == []
