"""The package's import rules (docs/architecture.md), read from the source: no import cycles between
modules (function-level imports included), and Qt only in the widgets (plus the named GUI entry points)."""

from __future__ import annotations

import ast
from pathlib import Path

import napari_weakseg

ROOT = Path(napari_weakseg.__file__).parent
QT = ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "napari.qt", "napari._qt")
# outside widgets/, these run or measure the GUI itself
QT_ALLOWED = {"widgets", "demo", "bench.gui_speed"}


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in ROOT.rglob("*.py")}


def imports(name: str, path: Path) -> set[str]:
    """Absolute names that module ``name`` imports (anywhere in it)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])]) if node.level else node.module
            found.add(mod if node.level == 0 else "napari_weakseg." + mod if mod else "napari_weakseg")
            if node.level:  # "from . import x" may import submodule x
                found |= {f"napari_weakseg.{mod}.{a.name}" if mod else f"napari_weakseg.{a.name}" for a in node.names}
    return found


def internal_graph() -> dict[str, set[str]]:
    mods = modules()
    graph = {}
    for name, path in mods.items():
        targets = {t.removeprefix("napari_weakseg.") for t in imports(name, path) if t.startswith("napari_weakseg.")}
        graph[name] = {t for t in targets if t in mods and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    """Suites produce results, reports read them; nothing points back (packages' __init__ included)."""
    assert cycles(internal_graph()) == []


def test_qt_only_in_the_widgets():
    offenders = {}
    for name, path in modules().items():
        if name == "widgets" or name.startswith("widgets.") or name in QT_ALLOWED:
            continue
        qt = {i for i in imports(name, path) if i.split(".")[0] in QT or i.startswith(("napari.qt", "napari._qt"))}
        if qt:
            offenders[name] = sorted(qt)
    assert offenders == {}


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# package -> packages it must not import (directly, or through any module it imports)
FORBIDDEN = {
    "methods": ("data", "study", "io", "bench", "widgets", "training"),
    "models": ("data", "study", "io", "bench", "widgets", "training", "methods"),
    "losses": ("data", "study", "io", "bench", "widgets", "training", "methods"),
}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for w in graph[todo.pop()]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_methods_take_batches_not_data_sources():
    """Methods, networks and losses see tensors only: nothing of data/, study/, io/ or the apps above them,
    not even through another module (the Trainer hands a method what it needs, e.g. aux masks, to prepare())."""
    graph = internal_graph()
    offenders = {}
    for name in graph:
        top = name.split(".")[0]
        if top in FORBIDDEN:
            bad = sorted(m for m in reachable(graph, name) if m.split(".")[0] in FORBIDDEN[top])
            if bad:
                offenders[name] = bad
    assert offenders == {}
