"""The layout's rules about who imports whom (docs/architecture.md), checked by reading
the sources rather than by memory."""

from __future__ import annotations

import ast
from pathlib import Path

import arrears

SOURCES = Path(arrears.__file__).parent


def _store_imports(room: str) -> list[str]:
    """Every `arrears.store...` module that a module of `room` imports, as
    `path: module`."""
    found = []
    for path in sorted((SOURCES / room).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found += [
                f"{path.relative_to(SOURCES)}: {name}"
                for name in names
                if name.startswith("arrears.store")
            ]
    return found


def test_the_api_reaches_the_store_only_through_the_unit_of_work() -> None:
    imports = _store_imports("api")
    assert [i for i in imports if not i.endswith(": arrears.store.unit_of_work")] == []


def test_the_console_reaches_the_store_only_through_the_unit_of_work() -> None:
    imports = _store_imports("console")
    assert [i for i in imports if not i.endswith(": arrears.store.unit_of_work")] == []


def test_no_service_commits_or_rolls_back() -> None:
    calls = []
    for path in sorted((SOURCES / "services").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"commit", "rollback"}
            ):
                calls.append(f"{path.relative_to(SOURCES)}:{node.lineno}")
    assert calls == []
