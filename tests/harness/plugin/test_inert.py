"""Inert where unused: another project's test session runs exactly as if the plugin were not installed.

Each foreign project here is run twice in a fresh process, with the plugin (it loads through its pytest11
entry point, as in any venv that has it) and with `-p no:research_bench`, and must give the same outcome,
the same test ids and the same exit status: its own `engine` package, its own `quality`/`breakdown`/
`efficiency` markers, its own `profile` parameters (argnames=, a marker, a pytest_generate_tests, a fixture),
its own `profiles` and `pipeline` markers, a `results` file at its rootdir and a stale profiles variable, and
a pytester-based suite that reloads modules under `-W error`. The plugin loads without importing the engine,
numpy or psutil, and none of its hooks needs pytest_configure to have run."""
from __future__ import annotations

import sys

import pytest

ENTRY = "llm_research_bench.harness.plugin.hooks"
HEAVY = ("numpy", "psutil", "torch", "scipy", "jsonschema", "tabulate", "llama_cpp", "llm_research_bench.engine")

MODULES_PROBE = '''
import json, os, sys

def pytest_sessionfinish(session):
    with open(os.environ["MODULES_OUT"], "w") as fh:
        json.dump(sorted(sys.modules), fh)
'''


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def _same_without_plugin(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run with and without the plugin; the outcomes, ids and exit status must match. Returns the run with it."""
    with_ = _run(pytester, "-v", *args)
    without = _run(pytester, "-v", "-p", "no:research_bench", *args)
    assert with_.ret == without.ret, with_.stdout.str() + with_.stderr.str()
    assert with_.parseoutcomes() == without.parseoutcomes()

    def ids(r):
        return sorted(line.split(" ")[0] for line in r.outlines if "::" in line and (" PASSED" in line or
                      " FAILED" in line or " SKIPPED" in line or " ERROR" in line or " XFAIL" in line))
    assert ids(with_) == ids(without)
    out = with_.stdout.str()
    assert "[research-bench]" not in out and "research-bench 0." not in out and "research bench summary" not in out
    return with_


@pytest.fixture
def foreign(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for k in ("RESEARCH_PROFILES", "RESEARCH_BENCH_PROFILES", "RESEARCH_BENCH_RESULTS_DIR"):
        monkeypatch.delenv(k, raising=False)
    return pytester


def test_the_entry_point_loads_no_engine_numpy_or_psutil(foreign, tmp_path, monkeypatch):
    foreign.makeconftest(MODULES_PROBE)
    foreign.makepyfile(test_plain="def test_a():\n    assert 1\n")
    mods = {}
    for name, extra in (("with", ()), ("without", ("-p", "no:research_bench"))):
        out = tmp_path / f"{name}.json"
        monkeypatch.setenv("MODULES_OUT", str(out))
        r = _run(foreign, *extra)
        assert r.ret == 0, r.stdout.str() + r.stderr.str()
        import json
        mods[name] = set(json.loads(out.read_text()))
    assert ENTRY in mods["with"] and ENTRY not in mods["without"]
    added = mods["with"] - mods["without"]
    assert all(m.startswith("llm_research_bench.") or m == "llm_research_bench" for m in added), sorted(added)
    assert not any(m == h or m.startswith(h + ".") for m in added for h in HEAVY), sorted(added)


def test_a_project_with_its_own_engine_package(foreign):
    foreign.mkpydir("engine")
    (foreign.path / "engine" / "__init__.py").write_text("NAME = 'theirs'\n\ndef research(q):\n    return q\n")
    foreign.mkpydir("harness")
    (foreign.path / "harness" / "__init__.py").write_text("NAME = 'their harness'\n")
    foreign.makepyfile(test_own_engine='''
import engine, harness

def test_their_engine():
    assert engine.NAME == "theirs" and engine.research("q") == "q"

def test_their_harness():
    assert harness.NAME == "their harness"
''')
    _same_without_plugin(foreign, "--import-mode=prepend").assert_outcomes(passed=2)


def test_a_project_with_its_own_quality_breakdown_and_efficiency_markers(foreign):
    foreign.makeini("[pytest]\nmarkers =\n    quality: theirs\n    breakdown: theirs\n    efficiency: theirs\n")
    foreign.makepyfile(test_marked='''
import pytest

@pytest.mark.quality
def test_q(): pass

@pytest.mark.breakdown
def test_b(): pass

@pytest.mark.efficiency
def test_e(): pass

def test_plain(): pass
''')
    r = _same_without_plugin(foreign, "--strict-markers")
    r.assert_outcomes(passed=4)
    assert "deselected" not in r.stdout.str()
    _same_without_plugin(foreign, "-m", "quality").assert_outcomes(passed=1, deselected=3)


def test_a_project_with_its_own_profile_parameters_profiles_and_pipeline_markers(foreign):
    foreign.makeconftest('''
import pytest

def pytest_generate_tests(metafunc):
    if "profile" in metafunc.fixturenames and metafunc.function.__name__ == "test_hook":
        metafunc.parametrize("profile", ["dev", "prod"])
''')
    foreign.makeini("[pytest]\nmarkers =\n    profiles(*names): theirs\n    pipeline: theirs\n")
    foreign.makepyfile(test_profiles='''
import pytest

@pytest.mark.parametrize(argnames="profile", argvalues=["small", "large"])
def test_argnames(profile):
    assert profile in ("small", "large")

@pytest.mark.parametrize("profile,n", [("a", 1), ("b", 2)])
def test_positional(profile, n):
    assert n in (1, 2)

def test_hook(profile):
    assert profile in ("dev", "prod")

@pytest.mark.profiles("nightly")
@pytest.mark.pipeline
def test_their_markers():
    pass

@pytest.mark.pipeline
@pytest.mark.parametrize("profile", ["quick"])
def test_pipeline_marker_with_a_quick_parameter(profile):
    assert profile == "quick"
''')
    foreign.makepyfile(test_fixture='''
import pytest

@pytest.fixture(params=["x", "y"])
def profile(request):
    return request.param

def test_own_fixture(profile):
    assert profile in ("x", "y")
''')
    _same_without_plugin(foreign, "--strict-markers", "-p", "timeout").assert_outcomes(passed=10)


def test_a_results_file_and_a_stale_profiles_variable_fail_only_benches(foreign, monkeypatch):
    (foreign.path / "results").write_text("not a folder\n")
    monkeypatch.setenv("RESEARCH_BENCH_PROFILES", str(foreign.path / "gone.toml"))
    foreign.makepyfile(test_plain="def test_a(): pass\n")
    _same_without_plugin(foreign).assert_outcomes(passed=1)
    # a research bench in the same project needs the profiles: one clear usage error there
    foreign.makepyfile(test_bench="def test_b(profile): pass\n")
    r = _run(foreign)
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert "gone.toml" in r.stderr.str() and "Traceback" not in r.stderr.str()


def test_a_pytester_suite_that_reloads_modules_under_warnings_as_errors(foreign):
    """Each in-process pytester run drops the modules it imported (the plugin's too) and imports them again
    in the next run; with -W error a plugin that pulled in numpy (which warns when re-imported) breaks."""
    foreign.makeini("[pytest]\nfilterwarnings = error\naddopts = -p pytester\n")
    foreign.makepyfile(test_meta='''
import pytest

@pytest.mark.parametrize("i", range(3))
def test_inner_session(pytester, i):
    pytester.makepyfile("def test_inner():\\n    assert True\\n")
    r = pytester.runpytest("-p", "no:cacheprovider")
    r.assert_outcomes(passed=1)
''')
    for extra in ((), ("-p", "no:research_bench")):
        r = _run(foreign, "test_meta.py", *extra)       # not the first run's basetemp, which lies beside it
        assert r.ret == 0, r.stdout.str() + r.stderr.str()
        r.assert_outcomes(passed=3)


def test_hooks_tolerate_a_config_the_plugin_did_not_configure(pytester):
    from types import SimpleNamespace

    from llm_research_bench.harness.plugin import hooks
    config = pytester.parseconfig()            # no pytest_configure has run on it
    node = SimpleNamespace(config=config, workerinput={}, workeroutput={})
    hooks.pytest_configure_node(node)
    hooks.pytest_testnodedown(node, None)
    assert hooks.pytest_report_collectionfinish(config, []) is None
    session = SimpleNamespace(config=config, exitstatus=0)
    hooks.pytest_sessionfinish(session, 0)
    assert session.exitstatus == 0
    hooks.pytest_terminal_summary(None, 0, config)
    hooks.pytest_collection_modifyitems(None, config, [])


@pytest.mark.skipif(sys.platform == "win32", reason="signals")
def test_a_bench_beside_foreign_tests_changes_only_the_bench(pytester, monkeypatch):
    """In one session: the bench is parametrized and summarised, the foreign tests stay as they are."""
    from tests.harness.conftest import pinned_profiles
    for k in ("RESEARCH_PROFILES", "RESEARCH_BENCH_RESULTS_DIR"):
        monkeypatch.delenv(k, raising=False)
    pinned = pytester.path / "pinned.toml"
    pinned.write_text(pinned_profiles())
    monkeypatch.setenv("RESEARCH_BENCH_PROFILES", str(pinned))
    pytester.makeini("[pytest]\nmarkers =\n    quality: theirs\n")
    pytester.makepyfile(test_mixed='''
import pytest
from tests.harness.doubles import recorded_telemetry

@pytest.mark.quality
@pytest.mark.parametrize("profile", ["p1"])
def test_foreign(profile):
    pass

def test_bench(record_result, profile):
    tel = recorded_telemetry()
    tel["profile"]["name"] = profile.name
    record_result(tel)
''')
    r = pytester.runpytest("-p", "no:cacheprovider", "--research-machine-class", "linux-x86_64-2c",
                           "--research-results-dir", str(pytester.path / "res"), "-v")
    r.assert_outcomes(passed=4)          # the foreign test once, the bench once per profile
    out = r.stdout.str()
    assert "test_foreign[p1] PASSED" in out and "test_bench[quick] PASSED" in out
    assert "research bench summary" in out and "research-bench 0." in out
