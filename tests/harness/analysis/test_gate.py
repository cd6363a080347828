"""Instance verdicts (analysis/gate.py, pure): time on the median of the quiet runs, a miss seen only on a busy
machine UNVERIFIED, memory and quality per run, the stored verdict reproducible from the records."""
from __future__ import annotations

import copy

from llm_research_bench.harness.analysis.gate import (MET, MISSED, UNVERIFIED, failing, instance_verdict,
                                                      instance_verdicts, judge_time)
from llm_research_bench.harness.records import MEMORY_OVER, RUN_TIMED_OUT, TIME_OVER, ResultRecord
from llm_research_bench.harness.run.verdicts import time_message
from tests.harness.doubles import recorded_telemetry

BUDGET = {"profile": "quick", "machine_class": "linux-x86_64-2c", "time_lower_s": 10.0, "time_upper_s": 30.0,
          "memory_mb": 4096.0, "scale": 1.0, "reference_fallback": False, "citation_floor": 0.5, "timeout_s": 45.0}


def _run(t, *, contended=False, superseded=False, codes=(), round=1, instance="i1", timed_out=False, load=None):
    tel = copy.deepcopy(recorded_telemetry())
    tel["metrics"]["execution_time_s"] = t
    if timed_out:
        tel["timed_out"], tel["success"] = True, False
    codes = list(codes) + ([TIME_OVER] if t > BUDGET["time_upper_s"] and not timed_out else [])
    extra = {"instance": instance, "reason_codes": codes}
    if contended:
        extra.update(contended=True, other_cpu_load=load or 1.2)
    if superseded:
        extra["superseded"] = True
    return ResultRecord(test_id="b.py::test_pipeline[quick]", bench="pipeline", profile="quick",
                        outcome="timed_out" if timed_out else ("passed" if not codes else "failed"),
                        target_met=not codes, machine_fingerprint="m", machine_class="linux-x86_64-2c",
                        commit="c", reasons=[f"{c} message" for c in codes], round=round, telemetry=tel,
                        budget=BUDGET, extra=extra)


def test_one_slow_run_among_quiet_rounds_does_not_fail_the_instance():
    v = instance_verdict([_run(16.0), _run(34.7, round=2), _run(16.2, round=3)])
    assert v.status == MET and v.time_status == "within" and v.time_s == 16.2 and v.time_basis == "quiet"


def test_a_miss_that_persists_on_a_quiet_machine_fails():
    v = instance_verdict([_run(31.0), _run(34.0, round=2), _run(16.0, round=3)])
    assert v.status == MISSED and v.codes == [TIME_OVER] and v.time_s == 31.0
    msg = time_message(v, BUDGET)
    assert msg == "quick: 31.0 s > 30 s budget (+3 %) (median of 3 quiet runs) [linux-x86_64-2c]"


def test_contended_runs_are_left_out_of_the_time_verdict_when_quiet_ones_exist():
    runs = [_run(40.0, contended=True, superseded=True), _run(16.0), _run(45.0, contended=True, round=2)]
    v = instance_verdict(runs)
    assert v.status == MET and v.time_runs == 1 and v.contended == 2 and v.remeasured == 1 and v.runs == 2


def test_a_miss_seen_only_on_a_busy_machine_is_unverified_and_the_policy_decides():
    runs = [_run(40.0, contended=True, superseded=True, load=1.4), _run(38.0, contended=True),
            _run(16.0, contended=True, round=2), _run(39.0, contended=True, round=3)]
    v = instance_verdict(runs)
    assert v.status == UNVERIFIED and v.time_status == "unverified" and v.time_s == 38.0 and v.time_runs == 3
    assert not v.fails("pass") and v.fails("fail") and failing([v], "fail") == [v]
    assert time_message(v, BUDGET, "pass") == (
        "quick: UNVERIFIED: 38.0 s > 30 s budget (+27 %) (median of 3 runs, every one timed on a busy machine: "
        "other processes kept up to 1.4 cores busy; 1 re-measured): not failed (--research-unverified=pass) "
        "[linux-x86_64-2c]")


def test_a_timeout_is_real_on_a_quiet_machine_and_unverified_on_a_busy_one():
    quiet = instance_verdict([_run(45.1, timed_out=True, codes=[RUN_TIMED_OUT])])
    assert quiet.status == MISSED and RUN_TIMED_OUT in quiet.codes
    busy = instance_verdict([_run(45.1, timed_out=True, codes=[RUN_TIMED_OUT], contended=True)])
    assert busy.status == UNVERIFIED and busy.codes == []
    assert time_message(busy, BUDGET).startswith("quick: UNVERIFIED: 45.1 s > 30 s budget")


def test_memory_and_quality_misses_stay_per_run_even_when_re_measured():
    runs = [_run(16.0, codes=[MEMORY_OVER], contended=True, superseded=True), _run(16.1), _run(16.2, round=2)]
    v = instance_verdict(runs)
    assert v.status == MISSED and v.codes == [MEMORY_OVER] and v.run_reasons == ["memory_over_limit message"]


def test_records_stored_on_their_own_are_instances_by_themselves():
    a, b = _run(16.0, instance=None), _run(40.0, instance=None)
    a.extra.pop("instance"), b.extra.pop("instance")
    vs = instance_verdicts([a, b])
    assert [v.status for v in vs] == [MET, MISSED]


def test_one_time_rule_judges_a_run_and_an_instance_median_alike():
    assert [judge_time(t, 10.0, 30.0) for t in (30.1, 30.0, 10.0, 9.9)] == ["over", "within", "within", "under"]
    assert judge_time(1.0, None, 30.0) == "within"
    for t in (9.0, 20.0, 31.0):
        run = instance_verdict([_run(t)])
        assert run.time_status == judge_time(t, 10.0, 30.0)
        assert run.time_status == "over" or run.status == MET


def test_ungated_instances_never_fail():
    r = _run(40.0)
    r.extra["gate"] = False
    assert instance_verdict([r]).status == MISSED and not instance_verdict([r]).fails("fail")


def test_calibration_blocks_judge_consecutive_rounds_like_a_continuous_session():
    from llm_research_bench.harness.analysis.calibration import median_change, rate, sequential_comparisons
    from llm_research_bench.harness.analysis.names import parse_threshold

    th = [parse_threshold("execution_time_s:5%")]
    a = [_run(16.0 + 0.01 * (i % 3), round=i) for i in range(1, 11)]
    same = [_run(16.0 + 0.01 * ((i + 1) % 3), round=i) for i in range(1, 11)]
    slow = [_run(17.6 + 0.01 * (i % 3), round=i) for i in range(1, 11)]
    for r in [*a, *same, *slow]:
        r.outcome, r.extra["reason_codes"] = "passed", []
    aa = sequential_comparisons(a, same, rounds=5, max_rounds=5, thresholds=th)
    ab = sequential_comparisons(a, slow, rounds=5, max_rounds=5, thresholds=th)
    assert [b.rounds for b in aa] == [(1, 5), (6, 10)] and rate(aa) == 0.0
    assert rate(ab) == 1.0 and all(b.method == "permutation" and b.n_base == 5 for b in ab)
    assert round(median_change(a, slow)) == 10
