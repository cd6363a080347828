"""The layout's rules, checked on the import graph of the source (pure: reads the files, imports nothing).

Rooms of the harness and the direction of their imports: plugin -> run -> analysis; report reads records and
analysis (and run's store readers); commands (research-bench) calls run, analysis and report; records.py and
units.py are shared by all; analysis imports no other room; run never imports report or plugin; nothing imports
plugin or commands (but `python -m`'s __main__); the engine never imports the harness; no cycles.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = "llm_research_bench"
SHARED = {"records", "units", "__init__", "__main__"}
ALLOWED = {            # room -> rooms it may import (besides itself and the shared modules)
    "analysis": set(),
    "run": {"analysis"},
    "report": {"analysis", "run"},
    "plugin": {"run", "analysis", "report"},
    "commands": {"run", "analysis", "report"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for top in ("engine", "harness"):
        for f in (ROOT / top).rglob("*.py"):
            rel = f.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Modules (as 'engine.x' / 'harness.y.z') that `name` imports, anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                mod = ".".join(anchor + ([node.module] if node.module else []))
                mods = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for m in mods:
            if m.startswith(PKG + "."):
                m = m[len(PKG) + 1:]
            if m.split(".")[0] in ("engine", "harness"):
                found.add(m)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    g = {}
    for name, path in mods.items():
        deps = set()
        for m in _imports(name, path):
            while m and m not in mods:           # 'harness.run.store.ResultRecord' -> 'harness.run.store'
                m = m.rpartition(".")[0]
            if m and m != name:
                deps.add(m)
        g[name] = deps
    return g


def _room(mod: str) -> str | None:
    parts = mod.split(".")
    if parts[0] != "harness" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in ALLOWED else None


GRAPH = _graph()


@pytest.mark.parametrize("mod", sorted(m for m in GRAPH if _room(m)))
def test_room_imports_flow_one_way(mod):
    room = _room(mod)
    bad = sorted(d for d in GRAPH[mod] if _room(d) not in (None, room) and _room(d) not in ALLOWED[room])
    assert not bad, f"{mod} ({room}/) imports {bad}: {room}/ may import only {sorted(ALLOWED[room]) or 'no other room'}"


def test_nothing_imports_plugin_or_commands():
    for top in ("plugin", "commands"):
        users = sorted(m for m, deps in GRAPH.items() if _room(m) != top and m != "harness.__main__"
                       and any(_room(d) == top for d in deps))
        assert not users, f"{users} import {top}/"


def test_the_engine_never_imports_the_harness():
    bad = {m: sorted(d for d in deps if d.startswith("harness")) for m, deps in GRAPH.items() if m.startswith("engine")}
    assert not {m: d for m, d in bad.items() if d}


def test_no_import_cycles():
    # Package __init__ modules are containers (they re-export lazily), not participants in cycles.
    g = {m: {d for d in deps if d in GRAPH and d not in ("engine", "harness") and not d.endswith("__main__")}
         for m, deps in GRAPH.items() if m not in ("engine", "harness")}
    seen, stack, cycles = set(), [], []

    def visit(n):
        if n in stack:
            cycles.append(stack[stack.index(n):] + [n])
            return
        if n in seen:
            return
        seen.add(n)
        stack.append(n)
        for d in sorted(g.get(n, ())):
            visit(d)
        stack.pop()

    for n in sorted(g):
        visit(n)
    assert not cycles, f"import cycles: {cycles[:3]}"


def test_shared_modules_import_no_room():
    for mod in ("harness.records", "harness.units"):
        assert not {d for d in GRAPH[mod] if _room(d)}, GRAPH[mod]


def test_every_room_and_module_says_what_it_owns():
    for name, path in _modules().items():
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc and len(doc) > 20, f"{path.relative_to(ROOT)} has no module docstring saying what it owns"
