"""The engine's layout: a package per part of the paper, imports only downwards, no circle, no UI.

core (``engine/*.py``) ← attribution ← classviz / segmentation ← runs ← cli: a module may import
from its own package and from the layers before it, never from a later one or a sibling.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"core": 0, "attribution": 1, "classviz": 2, "segmentation": 2, "runs": 3, "cli": 4}


def engine_modules() -> list[str]:
    names = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


MODULES = engine_modules()


def module_path(name: str) -> Path:
    path = ROOT.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def engine_imports(name: str) -> set[str]:
    """The engine modules ``name`` imports, anywhere in it (a lazy import inside a function counts):
    ``from engine.x import y`` is an import of ``engine.x.y`` when that is a module, else of ``engine.x``."""
    found = set()
    for node in ast.walk(ast.parse(module_path(name).read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("engine"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("engine"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return {m for m in found if m in MODULES} - {name}


def layer(name: str) -> tuple[str, int]:
    parts = name.split(".")
    package = parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else "core"
    if name == "engine.__main__":
        return "cli", LAYERS["cli"]
    return package, LAYERS[package]


def test_every_import_points_down_the_layers():
    offenders = []
    for name in MODULES:
        package, level = layer(name)
        for target in engine_imports(name):
            other, other_level = layer(target)
            if other != package and (other_level > level or (other_level == level and package != "core")):
                offenders.append(f"{name} ({package}) imports {target} ({other})")
    assert offenders == []


def test_there_is_no_import_circle():
    graph = {name: engine_imports(name) for name in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in MODULES:
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_each_package_opens_with_what_it_is_and_what_it_may_import():
    for package in ("attribution", "classviz", "segmentation", "runs"):
        doc = ast.get_docstring(ast.parse((ROOT / "engine" / package / "__init__.py").read_text())) or ""
        assert "§" in doc and "May import" in doc, package


def test_every_module_imports_first_in_a_fresh_interpreter_without_streamlit():
    """Each module imported as the first engine module of the interpreter (the engine's modules are
    dropped between imports; torch and the rest stay loaded): a circle that only bites from one entry
    point fails here; and nothing in the engine pulls in streamlit."""
    script = f"""
import importlib, json, sys, traceback
failures = {{}}
for name in {MODULES!r}:
    for loaded in [m for m in sys.modules if m == "engine" or m.startswith("engine.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failures[name] = traceback.format_exc(limit=3)
print(json.dumps({{"failures": failures, "streamlit": sorted(m for m in sys.modules if m.split(".")[0] == "streamlit")}}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["failures"] == {}
    assert report["streamlit"] == []


# ---------------------------------------------------------------- the layer above: ui/ and pages/
# ui's modules in the order they may import each other (a module imports only from earlier levels);
# pages import ui and engine; nothing imports a page; ui/__init__.py imports no ui module.
UI_LEVELS = {"state": 0, "holds": 0, "images": 1, "links": 1, "model": 2, "pictures": 2, "canvas_frontend": 2, "limits": 2, "canvas": 3,
             "jobs": 3, "results": 4, "inputs": 5, "workspace": 5, "downloads": 5}
UI_MODULES = sorted(p.stem for p in (ROOT / "ui").glob("*.py") if p.stem != "__init__")
PAGES = sorted(p.stem for p in (ROOT / "pages").glob("*.py"))


def imported_names(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it, as dotted names (``from ui.links import x`` is ``ui.links``
    and ``ui.links.x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def ui_imports(path: Path) -> set[str]:
    return {name.split(".")[1] for name in imported_names(path) if name.startswith("ui.") and name.split(".")[1] in UI_MODULES}


def test_every_ui_module_has_a_level_and_says_what_it_owns_and_may_import():
    assert sorted(UI_LEVELS) == UI_MODULES
    for name in UI_MODULES:
        doc = ast.get_docstring(ast.parse((ROOT / "ui" / f"{name}.py").read_text())) or ""
        assert "Owns:" in doc and "May import:" in doc, name
        allowed = {m for m in UI_MODULES if f"ui.{m}" in doc.split("May import:")[1]}
        assert ui_imports(ROOT / "ui" / f"{name}.py") <= allowed, f"ui.{name} imports more than its docstring says"


def test_ui_modules_import_only_earlier_levels_and_never_a_page():
    offenders = []
    for name in UI_MODULES:
        path = ROOT / "ui" / f"{name}.py"
        offenders += [f"ui.{name} imports ui.{t}" for t in ui_imports(path) if UI_LEVELS[t] >= UI_LEVELS[name]]
        offenders += [f"ui.{name} imports {n}" for n in imported_names(path) if n.split(".")[0] in ("pages", "app")]
    assert ui_imports(ROOT / "ui" / "__init__.py") == set()
    assert offenders == []


def test_pages_import_ui_and_engine_never_another_page_and_the_engine_never_ui():
    for page in PAGES:
        names = imported_names(ROOT / "pages" / f"{page}.py")
        assert not any(n.split(".")[0] in ("pages", "app") for n in names), page
        assert not any(n.startswith("ui.") and n.split(".")[1] not in UI_MODULES for n in names if n.count(".") == 1), page
    for name in MODULES:
        assert not any(n.split(".")[0] in ("ui", "pages", "streamlit") for n in imported_names(module_path(name))), name


def test_there_is_no_import_circle_in_the_whole_app():
    nodes = {**{f"ui.{m}": ROOT / "ui" / f"{m}.py" for m in UI_MODULES}, **{f"pages.{p}": ROOT / "pages" / f"{p}.py" for p in PAGES},
             **{m: module_path(m) for m in MODULES}}
    graph = {node: engine_imports(node) if node in MODULES else {n for n in imported_names(path) if n in nodes and n != node}
             for node, path in nodes.items()}
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for node in sorted(nodes):
        if node not in state:
            visit(node, [node])
    assert circles == []


def ui_uses_without_import(tree: ast.AST, outer: frozenset = frozenset()) -> set[str]:
    """The ui modules used by name (``ui.links.x``) in a scope that neither it nor an enclosing scope imports;
    a function's own imports count only inside it."""
    scopes, nodes, stack = [], [], list(ast.iter_child_nodes(tree))
    while stack:  # this scope's nodes, not those of the functions and classes in it
        node = stack.pop()
        (scopes if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)) else nodes).append(node)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))
    here = set(outer)
    for node in nodes:
        if isinstance(node, ast.Import):
            here.update(a.name.split(".")[1] for a in node.names if a.name.startswith("ui."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ui."):
            here.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "ui":
            here.update(a.name for a in node.names)
    used = {node.value.attr for node in nodes if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name) and node.value.value.id == "ui" and node.value.attr in UI_MODULES}
    missing = used - here
    for scope in scopes:
        missing |= ui_uses_without_import(scope, frozenset(here))
    return missing


def test_every_ui_module_a_file_uses_by_name_is_imported_where_it_is_used():
    """``ui.links.copy_link(...)`` after a bare ``import ui`` works only if another module happened to import
    ui.links first (in a test run, one always has; in a fresh server, none had: Home broke so)."""
    missing = []
    for path in [ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")]:
        unimported = ui_uses_without_import(ast.parse(path.read_text()))
        missing += [f"{path.relative_to(ROOT)} uses ui.{m} without importing it" for m in sorted(unimported)]
    assert missing == []
