"""The opt-in `quality` marker: `-m quick` leaves quality benches out, `-m "quick and quality"` runs them."""
from __future__ import annotations

import pytest

from llm_research_bench.harness.plugin.items import mentions_marker

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("expr,hit", [("quick and quality", True), ("quality", True), ("not quality", True),
                                      ("quick", False), ("", False), (None, False), ("quality_x", False),
                                      ("(quick or balanced) and quality", True)])
def test_mentions_marker(expr, hit):
    assert mentions_marker(expr, "quality") is hit


BENCH = """
import pytest

@pytest.mark.quick
def test_fast():
    pass

@pytest.mark.quick
@pytest.mark.quality
def test_quality_quick():
    pass

@pytest.mark.thorough
@pytest.mark.quality
def test_quality_thorough():
    pass
"""
CONFTEST = """
from llm_research_bench.harness.plugin.items import deselect_opt_in

def pytest_collection_modifyitems(items, config):
    deselect_opt_in(items, config)
"""
INI = """
[pytest]
markers =
    quick: q
    thorough: t
    quality: opt-in
"""


@pytest.fixture
def bench_dir(pytester):
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.mkdir("benches")
    (pytester.path / "benches" / "test_q.py").write_text(BENCH)
    return pytester


@pytest.mark.parametrize("args,passed,deselected", [
    (["benches", "-m", "quick"], 1, 2),
    (["benches", "-m", "quick and quality"], 1, 2),
    (["benches", "-m", "quality"], 2, 1),
    (["benches"], 1, 2),
    (["benches", "-m", "not quality"], 1, 2),
    (["benches/test_q.py"], 3, 0),                       # the file named directly: the user asked for it
    (["benches/test_q.py::test_quality_quick"], 1, 0),
])
def test_deselection(bench_dir, args, passed, deselected):
    r = bench_dir.runpytest("-p", "no:cacheprovider", *args)
    r.assert_outcomes(passed=passed, deselected=deselected or None) if deselected else r.assert_outcomes(passed=passed)


def test_the_long_benches_are_opt_in_and_registered():
    import importlib.util
    import tomllib
    from pathlib import Path

    from llm_research_bench.harness.plugin.items import OPT_IN_MARKERS
    assert {"quality", "breakdown", "efficiency", "memory_pressure"} <= set(OPT_IN_MARKERS)
    root = Path(__file__).resolve().parents[3]
    spec = importlib.util.spec_from_file_location("benches_conftest", root / "benches" / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    ini = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    for marker in OPT_IN_MARKERS:         # the project's benches register every opt-in marker they use
        assert any(line.startswith(f"{marker}:") for line in conftest.BENCH_MARKERS), marker
        assert any(line.startswith(f"{marker}:") for line in ini), marker
