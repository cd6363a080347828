"""The plugin beside well-known pytest plugins: pytest-memray, pytest-benchmark, pytest-timeout, pytest-xdist
and pytest-profiling (test-time dependencies, [dev]) load in the same session with no option clash, and
when pytest-memray tracks a bench, the harness uses its capture instead of starting a second memray tracker
(memray allows one at a time) and says so in the record."""
from __future__ import annotations

import importlib.util

import pytest

from llm_research_bench.harness.plugin.options import OPTIONS

COMPANIONS = {"pytest_memray": "--memray", "pytest_benchmark": "--benchmark-json", "pytest_timeout": "--timeout",
              "xdist": "--numprocesses", "pytest_profiling": "--profile"}


def test_help_lists_every_option_and_ini_key_beside_the_companions(pytester):
    present = {m: flag for m, flag in COMPANIONS.items() if importlib.util.find_spec(m) is not None}
    assert "pytest_timeout" in present and "pytest_benchmark" in present      # runtime dependencies
    r = pytester.runpytest_subprocess("--help")
    assert r.ret == 0, r.stderr.str()
    out = r.stdout.str()
    assert "conflicting option" not in out + r.stderr.str()
    for flag in present.values():
        assert flag in out, flag
    for o in OPTIONS:
        assert o.flag in out and f"{o.ini} (" in out, o.flag


@pytest.mark.skipif(importlib.util.find_spec("pytest_memray") is None, reason="pytest-memray not installed")
def test_pytest_memray_capture_is_reused_not_duplicated(bench, monkeypatch):
    monkeypatch.delenv("MEMRAY_RESULT_PATH", raising=False)   # set by an outer pytest-memray (it names files by uuid then)
    bench.run_bench()
    bins = bench.pytester.path / "memray-bins"
    r = bench.run("-m", "quick", "--memray", "--memray-bin-path", str(bins), "--research-memray",
                  "--hide-memray-summary")
    assert r.ret == 0, r.stdout.str() + r.stderr.str()
    (rec,) = bench.records()
    assert rec.extra["memray_capture_by"] == "pytest-memray"
    assert any("pytest-memray traces this test's allocations" in n for n in rec.extra["notes"])
    capture = rec.extra["memray_capture"]
    assert capture.startswith(str(bins)) and capture.endswith(".bin")
    from pathlib import Path
    assert Path(capture).exists()                      # the file pytest-memray wrote: the one the record names
    assert not (bench.results / "memray").exists()     # the harness started no capture of its own


@pytest.mark.skipif(importlib.util.find_spec("pytest_memray") is None, reason="pytest-memray not installed")
def test_pytest_memray_tracking_without_research_memray_is_noted(bench):
    bench.run_bench()
    r = bench.run("-m", "quick", "--memray", "--hide-memray-summary")
    assert r.ret == 0, r.stdout.str()
    (rec,) = bench.records()
    assert rec.extra["memray_capture_by"] == "pytest-memray"
    assert any("timings are inflated" in n for n in rec.extra["notes"])
