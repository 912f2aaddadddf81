"""House rules that keep the engine usable without the UI."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_engine_never_imports_streamlit():
    offenders = [p.relative_to(ROOT) for p in (ROOT / "engine").rglob("*.py") if "streamlit" in imported_modules(p)]
    assert offenders == []


def test_pages_do_no_tensor_arithmetic():
    offenders = [p.name for p in (ROOT / "pages").glob("*.py") if "torch" in imported_modules(p)]
    assert offenders == []
