"""The API reaches export logic only through shared/: no module of it imports the exporter."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    """Every module a file imports, absolute names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_api_imports_no_exporter_module() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in _imports(path) if name.startswith("services.exporter")
        )
        for path in (ROOT / "services" / "api").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_shared_exports_import_no_service() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in _imports(path) if name.startswith("services.")
        )
        for path in (ROOT / "shared" / "exports").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
