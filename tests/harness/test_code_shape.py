"""The shape of the harness's code, checked on its source (pure: parses the files, imports nothing).

Every function fits a screen (at most MAX_LINES lines) and takes at most MAX_PARAMS parameters (self and cls
not counted; a dataclass's generated constructor is not in the source). Comments explain the code: no module of
the engine, harness, tests or scripts narrates issue numbers.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 70
MAX_PARAMS = 8


def _functions():
    for path in sorted((ROOT / "harness").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.relative_to(ROOT), node


def _params(fn: ast.FunctionDef) -> int:
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    n = len(names) + (a.vararg is not None) + (a.kwarg is not None)
    return n - (1 if names[:1] in (["self"], ["cls"]) else 0)


def test_every_function_fits_a_screen():
    long = [f"{p}:{fn.lineno} {fn.name} ({fn.end_lineno - fn.lineno + 1} lines)"
            for p, fn in _functions() if fn.end_lineno - fn.lineno + 1 > MAX_LINES]
    assert not long, f"functions over {MAX_LINES} lines: {long}"


def test_no_function_takes_too_many_parameters():
    wide = [f"{p}:{fn.lineno} {fn.name} ({_params(fn)} parameters)"
            for p, fn in _functions() if _params(fn) > MAX_PARAMS]
    assert not wide, f"functions with over {MAX_PARAMS} parameters: {wide}"


@pytest.mark.parametrize("top", ["engine", "harness", "tests", "scripts"])
def test_code_narrates_no_issue_numbers(top):
    pattern = re.compile(r"\bissue [0-9]+", re.IGNORECASE)
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((ROOT / top).rglob("*.py"))
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not hits, f"history belongs in git and docs/, not in code: {hits}"
