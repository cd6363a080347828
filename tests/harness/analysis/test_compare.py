"""Regression comparison across commits: thresholds, noise tests (pure), --research-compare/--research-compare-fail
through the plugin on a git repository, and `python -m harness compare` offline."""
from __future__ import annotations

import copy
import sys

import pytest

from llm_research_bench.harness.analysis.compare import compare_records, latest_other_commit
from llm_research_bench.harness.analysis.stats import can_decide, min_p, noise_test
from llm_research_bench.harness.analysis.names import Threshold, parse_threshold
from llm_research_bench.harness.report.comparison import condition_notes, not_failed_note, regression_lines
from llm_research_bench.harness.records import ResultRecord
from tests.harness.doubles import recorded_telemetry

# -- pure ----------------------------------------------------------------------------------------------------


def test_parse_threshold_reads_direction_from_the_schema():
    assert parse_threshold("execution_time_s:10%") == Threshold("execution_time_s", 10.0, "lower")
    assert parse_threshold("tokens_per_second:5") == Threshold("tokens_per_second", 5.0, "higher")
    assert parse_threshold(" memory_peak_mb : 15 % ").better == "lower"


@pytest.mark.parametrize("spec,msg", [
    ("exec_time:10%", "unknown metric 'exec_time'"),
    ("execution_time_s:ten", "expected METRIC:PCT"),
    ("execution_time_s:0%", "above 0 %"),
    ("memory_samples:5%", "no better direction"),
])
def test_parse_threshold_errors(spec, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(")):
        parse_threshold(spec)


def test_noise_test_uses_what_the_rounds_allow():
    assert noise_test([10.0], [15.0]).method == "indicative"
    t = noise_test([10.0, 10.3, 9.8], [15.0, 15.2, 14.9])
    assert t.method == "indicative" and t.significant is None and t.why == "no_history"
    assert noise_test([10.0, 10.3], [15.0, 15.2]).why == "two_runs"
    assert min_p(3, 3) > 0.05 > min_p(4, 4) and can_decide(3, 4) and not can_decide(3, 3)
    t = noise_test([10.0, 10.3, 9.8, 10.1, 10.2], [15.0, 15.2, 14.9, 15.1, 15.3])
    assert t.method == "permutation" and t.significant and t.p_value == pytest.approx(2 / 252)
    t = noise_test([10.0, 12.0, 9.0, 11.5, 10.5], [10.8, 9.5, 12.2, 10.1, 11.0])
    assert t.method == "permutation" and not t.significant


def test_three_runs_a_side_use_the_series_history_when_there_is_enough():
    hist = [[10.0, 10.2, 9.9], [10.1, 10.3, 10.0], [9.8, 10.0, 10.1], [10.2, 10.1, 9.9]]
    t = noise_test([10.0, 10.3, 9.8], [15.0, 15.2, 14.9], history=hist)
    assert t.method == "history" and t.significant and (t.history_runs, t.history_commits) == (12, 4)
    t = noise_test([10.0, 10.3, 9.8], [10.1, 9.9, 10.2], history=hist)
    assert t.method == "history" and not t.significant
    assert noise_test([10.0, 10.3, 9.8], [15.0, 15.2, 14.9], history=hist[:2]).why == "no_history"


def test_deterministic_counters_are_compared_exactly():
    t = noise_test([161, 161, 161], [160, 160, 160], exact=True)
    assert t.method == "exact" and t.significant
    assert noise_test([161], [161], exact=True).significant is False


def _rec(commit, t, *, decode=None, ts="2026-01-01T00:00:00", warmup=False, outcome="passed", fp="m1"):
    tel = copy.deepcopy(recorded_telemetry())
    tel["metrics"]["execution_time_s"] = t
    if decode is not None:
        tel["metrics"]["tokens_per_second"] = decode
    return ResultRecord(test_id="b.py::test_pipeline[quick]", bench="pipeline", profile="quick", outcome=outcome,
                        target_met=True, machine_fingerprint=fp, machine_class="c", commit=commit, telemetry=tel,
                        warmup=warmup, timestamp=ts)


def test_compare_fails_only_beyond_threshold_and_beyond_noise():
    base = [_rec("a", t) for t in (10.0, 10.3, 9.8, 10.1)]
    th = [parse_threshold("execution_time_s:10%")]
    slow = compare_records(base, [_rec("b", t) for t in (15.0, 15.2, 14.9, 15.1)], thresholds=th)
    d = slow.series[0].delta("execution_time_s")
    assert d.change == "worse" and d.failed and round(d.delta_pct) == 50 and slow.failed
    assert ("pipeline[quick] execution_time_s: 10.05 -> 15.05 s (+49.8 %, worse; trimmed mean +49.8 %; threshold 10 %; permutation "
            "p=0.0143 one-sided (4 v 4 runs, spike-trimmed))") == regression_lines(slow)[0]
    small = compare_records(base, [_rec("b", t) for t in (10.6, 10.9, 10.4, 10.7)], thresholds=th)
    assert not small.failed and small.series[0].delta("execution_time_s").change == "worse"
    faster = compare_records(base, [_rec("b", t) for t in (5.0, 5.1, 4.9, 5.0)], thresholds=th)
    assert not faster.failed and faster.series[0].delta("execution_time_s").change == "better"
    one = compare_records([_rec("a", 10.0)], [_rec("b", 15.0)], thresholds=th)
    d = one.series[0].delta("execution_time_s")
    assert d.indicative and not d.failed and "indicative only" in not_failed_note(d)


def test_higher_is_better_metrics_regress_downwards():
    th = [parse_threshold("tokens_per_second:5%")]
    base = [_rec("a", 10, decode=86.0) for _ in range(3)]
    comp = compare_records(base, [_rec("b", 10, decode=70.0) for _ in range(3)], thresholds=th)
    d = comp.series[0].delta("tokens_per_second")
    assert d.change == "worse" and d.failed and d.test.method == "exact"


def test_runs_timed_on_a_busy_machine_are_called_out():
    cur = [_rec("b", 11.0), _rec("b", 12.0)]
    cur[0].extra = {"contended": True}
    (s,) = compare_records([_rec("a", 10.0)], cur).series
    assert any("busy machine: 0 of 1 baseline and 1 of 2 current runs" in n for n in condition_notes(s.conditions))


def test_warmups_and_unusable_runs_are_left_out():
    base = [_rec("a", 100.0, warmup=True), _rec("a", 10.0), _rec("a", 10.0, outcome="timed_out")]
    comp = compare_records(base, [_rec("b", 11.0)])
    d = comp.series[0].delta("execution_time_s")
    assert d.base.n == 1 and d.base.median == 10.0


def test_latest_other_commit_is_per_machine():
    recs = [_rec("a", 1, ts="2026-01-01"), _rec("b", 1, ts="2026-01-03"), _rec("c", 1, ts="2026-01-02"),
            _rec("d", 1, ts="2026-01-05", fp="other")]
    assert latest_other_commit(recs, current_commit="b", fingerprint="m1") == "c"
    assert latest_other_commit(recs, current_commit="x", fingerprint="m1") == "b"
    assert latest_other_commit(recs, current_commit="x", fingerprint="nobody") is None
    other = _rec("e", 1, ts="2026-01-09")
    other.bench = "quality"
    assert latest_other_commit(recs + [other], current_commit="x", fingerprint="m1",
                               keys={"pipeline[quick]"}) == "b"


# -- through the plugin and the CLI ----------------------------------------------------------------------------

def _session(bench, monkeypatch, times, *args):
    monkeypatch.setenv("RB_DOUBLE_TIMES", times)
    return bench.run("-m", "quick", "--research-warmup-runs", "0", *args)


@pytest.fixture
def two_commits(bench, monkeypatch):
    """Commit A measured at ~10 s (4 rounds); commit B checked out, nothing measured yet."""
    bench.run_bench()
    a = bench.commit("a")
    assert _session(bench, monkeypatch, "10,10.3,9.8,10.1", "--research-rounds", "4").ret == 0
    b = bench.commit("b")
    return a, b


def test_compare_fail_catches_a_slowdown_beyond_noise(bench, monkeypatch, two_commits):
    a, b = two_commits
    r = _session(bench, monkeypatch, "15,15.2,14.9,15.1", "--research-rounds", "4", "--research-compare-fail",
                 "execution_time_s:10%")
    assert r.ret == pytest.ExitCode.TESTS_FAILED
    out = r.stdout.str()
    assert f"baseline {a[:12]} (the latest other commit measured on this machine with the same profile settings), 4 record(s)" in out
    assert "CI gate: regressions beyond --research-compare-fail" in out
    assert ("REGRESSION: run[quick] execution_time_s: 10.05 -> 15.05 s (+49.8 %, worse; trimmed mean +49.8 %; threshold 10 %; permutation "
            "p=0.0143 one-sided (4 v 4 runs, spike-trimmed))") in out
    r.stdout.fnmatch_lines(["*run?quick?*4*15.1 ±0.2 s / 45 s*+49.8 %! / +0.0 %*"])


def test_compare_within_threshold_passes_and_shows_deltas(bench, monkeypatch, two_commits):
    a, _ = two_commits
    r = _session(bench, monkeypatch, "10.4,10.6,10.2,10.5", "--research-rounds", "4", f"--research-compare={a[:8]}",
                 "--research-compare-fail", "execution_time_s:10%")
    assert r.ret == 0, r.stdout.str()
    assert f"baseline {a[:12]} (--research-compare={a[:8]})" in r.stdout.str()
    r.stdout.fnmatch_lines(["*run?quick?*time*10.1 ±0.2 s (n=4)*10.4 ±0.2 s (n=4)*+4.0 %*worse*10 %*ok*"])


def test_one_round_is_indicative_and_never_fails(bench, monkeypatch, two_commits):
    r = _session(bench, monkeypatch, "15", "--research-compare-fail", "execution_time_s:10%")
    assert r.ret == 0
    assert "indicative only (1 run on a side: no noise estimate): not failed" in r.stdout.str()


def test_a_session_without_a_baseline_says_why(bench, monkeypatch):
    bench.run_bench()
    bench.commit("only")
    r = _session(bench, monkeypatch, "10")
    assert r.ret == 0
    r.stdout.fnmatch_lines(["*no baseline: no other commit has clean results of these benches on this machine*"
                            "(use --research-compare=REF)*"])


def test_a_second_session_on_one_commit_compares_with_the_first(bench, monkeypatch):
    bench.run_bench()
    sha = bench.commit("only")
    assert "no baseline: no other commit" in _session(bench, monkeypatch, "10").stdout.str()
    r = _session(bench, monkeypatch, "10.5")
    assert r.ret == 0
    out = r.stdout.str()
    assert (f"baseline {sha[:12]} (this commit's earlier sessions: no other commit is measured on this machine), "
            f"1 record(s)") in out and "no baseline" not in out
    r.stdout.fnmatch_lines([f"commit {sha[:12]} *", "*run?quick?*10.5 s / 45 s*yes*~+5.0 % / ~+0.0 %"])


def test_an_earlier_session_without_a_completed_run_is_no_baseline_and_said_so(bench, monkeypatch):
    bench.run_bench()
    bench.commit("only")
    monkeypatch.setenv("RB_DOUBLE_MODE", "fail")
    _session(bench, monkeypatch, "10")
    monkeypatch.setenv("RB_DOUBLE_MODE", "ok")
    out = _session(bench, monkeypatch, "10").stdout.str()
    assert ("no baseline: no other commit has clean results of these benches on this machine, nor does this "
            "commit's earlier session (no completed run) (use --research-compare=REF)") in out


def test_a_gate_that_cannot_decide_says_so_before_any_run(bench, monkeypatch, two_commits):
    r = _session(bench, monkeypatch, "15", "--research-rounds", "3", "--research-compare-fail",
                 "execution_time_s:10%")
    out = r.stdout.str()
    warning = "research-bench: warning: with 3 round(s) a side the noise test cannot decide"
    assert warning in out and "--research-rounds 4 lets it decide" in out
    assert out.index(warning) < out.index("research bench summary")
    start = [line for line in out.splitlines() if line.startswith(("research-bench: warning", "  (unless"))]
    assert len(start) == 2 and all(len(line) <= 120 for line in start), start


def test_no_baseline_is_said_not_failed(bench, monkeypatch):
    bench.run_bench()
    bench.commit("only")
    r = _session(bench, monkeypatch, "10", "--research-compare-fail", "execution_time_s:10%")
    assert r.ret == 0
    out = r.stdout.str()
    assert "no baseline: no other commit has clean results of these benches on this machine" in out
    assert "--research-compare-fail had nothing to compare with" in out


def test_compare_ref_that_nothing_knows_is_a_usage_error(bench):
    bench.run_bench()
    r = bench.run("-m", "quick", "--research-compare=deadbeef")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert "--research-compare=deadbeef (ini research_compare): no session on this machine was saved under this name (--research-save), git does not know this ref" in r.stderr.str()
    r = bench.run("--research-compare", "test_bench.py")
    assert "write --research-compare=REF" in r.stderr.str()


def test_python_m_harness_compare_prints_the_same_comparison_offline(bench, monkeypatch, two_commits):
    a, b = two_commits
    assert _session(bench, monkeypatch, "15,15.2,14.9,15.1", "--research-rounds", "4").ret == 0
    r = bench.pytester.run(sys.executable, "-m", "llm_research_bench.harness", "compare", a[:10], "HEAD", "--results-dir",
                           str(bench.results), "--compare-fail", "execution_time_s:10%")
    assert r.ret == 1
    out = r.stdout.str()
    assert f"Comparison: baseline {a[:12]} -> current {b[:12]}" in out
    assert "REGRESSION: run[quick] execution_time_s: 10.05 -> 15.05 s (+49.8 %" in out
    r = bench.pytester.run(sys.executable, "-m", "llm_research_bench.harness", "compare", a, b, "--results-dir", str(bench.results),
                           "--format", "json")
    assert r.ret == 0 and '"baseline": "' + a[:12] in r.stdout.str()
    r = bench.pytester.run(sys.executable, "-m", "llm_research_bench.harness", "compare", "nope", "--results-dir", str(bench.results))
    assert r.ret == 2 and "'nope': no session was saved under this name, git does not know it" in r.stderr.str()


def test_the_default_baseline_compares_like_with_like(bench, monkeypatch, two_commits):
    """Commit B also has runs on other profile settings (a user profiles file): a plain run on commit C is
    compared with B's runs on the same settings, and a run on the other settings with those."""
    a, b = two_commits
    slow = bench.profiles_file("[profiles.quick]\ncontext_window = 6144\nmax_tokens = 3072\n")
    assert _session(bench, monkeypatch, "20,20.2", "--research-rounds", "2", "--research-profiles-file", str(slow)).ret == 0
    bench.commit("c")
    r = _session(bench, monkeypatch, "10.1", "--research-compare")
    assert f"baseline {a[:12]} (the latest other commit measured on this machine with the same profile settings)" \
        in r.stdout.str()
    r = _session(bench, monkeypatch, "30", "--research-compare", "--research-profiles-file", str(slow))
    out = r.stdout.str()
    assert f"baseline {b[:12]} (the latest other commit measured on this machine with the same profile settings)" \
        in out and "+49.3 %" in out


def test_a_deterministic_counter_that_moved_is_changed_with_both_values_never_noise():
    from llm_research_bench.harness.report.comparison import notes as comparison_notes
    base = [_rec("a", t) for t in (10.0, 10.3, 9.8)]
    cur = [_rec("b", t) for t in (10.1, 10.2, 9.9)]
    for r in base:
        r.telemetry["metrics"]["tokens_generated"] = 161
    for r in cur:
        r.telemetry["metrics"]["tokens_generated"] = 160
    comp = compare_records(base, cur)
    d = comp.series[0].delta("tokens_generated")
    assert d is not None and d.change == "changed" and d.test.method == "exact" and d.test.significant
    assert (d.base_values, d.cur_values) == ([161.0], [160.0])
    assert ("pipeline[quick] tokens_generated changed: 161 -> 160 tok (a deterministic counter under greedy "
            "decoding: any change is real, not noise)") in comparison_notes(comp)
    same = compare_records(base, base[:2])
    assert same.series[0].delta("tokens_generated").change == "same"


def test_a_metric_new_to_the_schema_is_compared_like_the_others():
    """A metric added to the schema (cpu_time_s, x-better lower) is compared, thresholded and failed like
    execution_time_s: records read metric specs from the schema."""
    from llm_research_bench.harness.records import metric_specs
    specs = {**metric_specs("telemetry"),
             "cpu_time_s": {"type": ["number", "null"], "x-unit": "s", "x-better": "lower", "x-label": "CPU time"}}
    th = [parse_threshold("cpu_time_s:10%", specs)]
    base = [_rec("a", 10.0) for _ in range(5)]
    cur = [_rec("b", 10.0) for _ in range(5)]
    for i, r in enumerate(base):
        r.telemetry["metrics"]["cpu_time_s"] = 20.0 + 0.1 * i
    for i, r in enumerate(cur):
        r.telemetry["metrics"]["cpu_time_s"] = 26.0 + 0.1 * i
    comp = compare_records(base, cur, thresholds=th, specs=specs)
    d = comp.series[0].delta("cpu_time_s")
    assert d.label == "CPU time" and d.change == "worse" and d.failed and d.test.method == "permutation"


def test_three_rounds_a_side_are_judged_on_the_series_history_and_the_output_says_so(bench, monkeypatch):
    bench.run_bench()
    for i, times in enumerate(("10,10.3,9.8", "10.1,9.9,10.2", "10,10.2,9.9", "9.9,10.1,10.3")):
        bench.commit(f"c{i}")
        assert _session(bench, monkeypatch, times, "--research-rounds", "3").ret == 0
    bench.commit("slow")
    r = _session(bench, monkeypatch, "15,15.2,14.9", "--research-rounds", "3", "--research-compare-fail",
                 "execution_time_s:10%")
    assert r.ret == pytest.ExitCode.TESTS_FAILED
    assert ("10.1 -> 15 s (+48.5 %, worse; trimmed mean +48.9 %; threshold 10 %; history noise p=0.00025 one-sided (3 v 3 runs; noise from 12 runs on 4 recent "
            "commits)") in r.stdout.str()
