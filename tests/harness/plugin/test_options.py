"""The plugin's options: one `--research-` prefix, an ini key for each with the same meaning, and the documented
precedence (a bench's marker > the command line > the ini file > the default), through pytester."""
from __future__ import annotations

import pytest

from llm_research_bench.harness.plugin.options import (MARKER_KEYS, OPTIONS, OptionError, marker_overrides,
                                                      parse_options, where)

ROUNDS_BENCH = '''
import pytest
pytestmark = pytest.mark.pipeline

def test_run(research_bench, profile):
    research_bench.run()

@pytest.mark.research(rounds=4, warmup_runs=0)
def test_marked(research_bench, profile):
    research_bench.run()
'''


def test_every_option_has_the_prefix_and_an_ini_key(pytester):
    r = pytester.runpytest("--help")
    out = r.stdout.str()
    for o in OPTIONS:
        assert o.flag.startswith("--research-") and o.flag in out, o.flag
        assert f"{o.ini} " in out or f"{o.ini}\n" in out or f"{o.ini} (" in out, o.ini
    flags = {o.flag for o in OPTIONS}
    for clash in ("--profile", "--memray", "--isolate", "--rounds", "--backend", "--save", "--json"):
        assert clash not in flags, clash          # names pytest-profiling, pytest-memray, pytest-isolate... use


def _rounds(bench, test):
    recs = [r for r in bench.records() if r.test_id.endswith(test) and not r.warmup]
    return len(recs)


def test_ini_sets_rounds_the_command_line_overrides_it_and_a_marker_wins(bench):
    bench.pytester.makepyfile(test_bench=ROUNDS_BENCH)
    bench.pytester.makeini("[pytest]\nresearch_rounds = 2\nresearch_warmup_runs = 0\n")
    assert bench.run("-m", "quick").ret == 0
    assert _rounds(bench, "test_run[quick]") == 2          # ini
    assert _rounds(bench, "test_marked[quick]") == 4       # marker over ini
    assert bench.run("-m", "quick", "--research-rounds", "3").ret == 0
    assert _rounds(bench, "test_run[quick]") == 2 + 3      # command line over ini
    assert _rounds(bench, "test_marked[quick]") == 4 + 4   # marker over the command line


def test_ini_booleans_and_lists(bench):
    bench.pytester.makepyfile(test_bench=ROUNDS_BENCH)
    bench.pytester.makeini("[pytest]\nresearch_profile = balanced\nresearch_compare_fail =\n"
                           "    execution_time_s:10%\n    memory_peak_mb:20%\n")
    r = bench.run("--co", "-q")
    assert "test_run[balanced]" in r.stdout.str() and "test_run[quick]" not in r.stdout.str()
    bench.pytester.makeini("[pytest]\nresearch_enforce_memory = true\n")
    r = bench.run("--co", "-q")
    assert r.ret == pytest.ExitCode.USAGE_ERROR and "add --research-isolate" in r.stderr.str()
    bench.pytester.makeini("[pytest]\nresearch_isolate = maybe\n")
    r = bench.run("--co", "-q")
    assert "research_isolate): expected true or false, got 'maybe'" in r.stderr.str()


def test_pyproject_ini_options_change_behaviour(bench):
    bench.pytester.makepyfile(test_bench=ROUNDS_BENCH)
    bench.pytester.makepyprojecttoml('[tool.pytest.ini_options]\nresearch_rounds = 2\nresearch_warmup_runs = "1"\n'
                                    'research_compare_fail = ["execution_time_s:10%", "memory_peak_mb:15%"]\n'
                                    'research_save = "nightly"\nresearch_json = "out/session.json"\n')
    assert bench.run("-m", "quick", "-k", "test_run").ret == 0
    recs = [r for r in bench.records() if r.test_id.endswith("test_run[quick]")]
    assert sum(r.warmup for r in recs) == 1 and sum(not r.warmup for r in recs) == 2
    assert {r.extra["saved_as"] for r in recs} == {"nightly"}
    import json
    assert json.loads((bench.pytester.path / "out" / "session.json").read_text())["saved_as"] == "nightly"


def test_a_marker_with_a_session_option_is_a_clear_error(bench):
    bench.pytester.makepyfile(test_bench='''
import pytest

@pytest.mark.research(results_dir="x")
def test_bad(research_bench, profile):
    research_bench.run()
''')
    r = bench.run("-m", "quick")
    out = r.stdout.str() + r.stderr.str()
    assert "does not take 'results_dir'" in out and ", ".join(MARKER_KEYS) in out


class _Marker:
    def __init__(self, **kwargs):
        self.args, self.kwargs = (), kwargs


@pytest.mark.parametrize("key,bad", [("rounds", "0"), ("warmup_runs", "-1"), ("remeasure", "x"),
                                     ("budget_scale", "inf"), ("isolate", "maybe"), ("backend", "vllm"),
                                     ("corpus", "/no/such/corpus")])
def test_a_marker_value_is_checked_as_the_command_line_checks_it(tmp_path, key, bad):
    with pytest.raises(OptionError) as cli:
        parse_options({key: bad}, tmp_path)
    with pytest.raises(OptionError) as marker:
        marker_overrides(_Marker(**{key: bad}), "t.py::b")
    reason = str(cli.value).split(f"{where(key)}: ", 1)[1]
    assert str(marker.value) == f"t.py::b: @pytest.mark.research({key}={bad!r}): {reason}"


def test_a_marker_is_checked_with_the_options_it_overrides(tmp_path):
    base = parse_options({}, tmp_path)
    with pytest.raises(OptionError, match="add --research-isolate"):
        marker_overrides(_Marker(enforce_memory=True), "t.py::b", base)
    assert marker_overrides(_Marker(enforce_memory=True, isolate="yes"), "t.py::b", base) == {
        "enforce_memory": True, "isolate": True}
    assert marker_overrides(_Marker(rounds=3), "t.py::b", base) == {"rounds": 3, "warmup_runs": 1}
