"""Budgets, memory limits, schema checks and the quality floor: the pure verdicts (run/verdicts.py evaluate, fed the
telemetry recorded from a real quick run) and the same failures through the plugin."""
from __future__ import annotations

import copy
import dataclasses
import re

import pytest

from llm_research_bench.engine.profiles import get_profile
from llm_research_bench.engine.telemetry import validation_errors
from llm_research_bench.harness.run.verdicts import BudgetSpec, evaluate
from tests.harness.doubles import recorded_telemetry

from tests.harness.conftest import MACHINE, pinned_profiles


@pytest.fixture(scope="module")
def tel():
    return recorded_telemetry()


@pytest.fixture(scope="module")
def pinned(tmp_path_factory):
    p = tmp_path_factory.mktemp("profiles") / "pinned.toml"
    p.write_text(pinned_profiles())
    return p


@pytest.fixture
def _budget(pinned):
    def make(scale=1.0, machine=MACHINE, profile="quick"):
        return BudgetSpec.from_profile(get_profile(profile, pinned), machine, scale)
    return make


def _with(tel, **metrics):
    t = copy.deepcopy(tel)
    t["metrics"].update(metrics)
    return t


def test_recorded_quick_run_meets_its_target(tel, _budget):
    v = evaluate(tel, _budget(), schema_errors=validation_errors(tel))
    assert v.target_met and not v.reasons and v.time_status == "within" and v.memory_status == "within"


def test_over_the_time_budget_fails_with_the_budget_named(tel, _budget):
    v = evaluate(_with(tel, execution_time_s=52.3), _budget(), schema_errors=[])
    assert not v.target_met and v.codes == ["time_over_budget"]
    assert v.messages[0].startswith("quick: 52.3 s > 45 s budget (+16 %)")
    assert "[linux-x86_64-2c]" in v.messages[0]


def test_budget_scale_scales_time_and_is_shown(tel, _budget):
    v = evaluate(tel, _budget(scale=0.01), schema_errors=[])
    assert v.messages == ["quick: 18.6 s > 0.45 s budget (+4036 %) [linux-x86_64-2c, scaled x0.01]"]


def test_under_the_lower_bound_is_a_note_not_a_failure(tel, _budget):
    v = evaluate(_with(tel, execution_time_s=4.0), _budget(), schema_errors=[])
    assert v.target_met and v.time_status == "under"
    assert "under budget by 60 %" in v.notes[0] and "not failed" in v.notes[0]


def test_unknown_machine_class_falls_back_to_reference_figures_and_says_so(tel, _budget):
    v = evaluate(tel, _budget(machine="linux-aarch64-64c"), schema_errors=[])
    assert v.target_met    # apple-m1-16gb quick band is [25, 45]: 18.6 s is under it
    assert any("reference class" in n for n in v.notes)


def test_memory_over_the_limit_names_peak_limit_and_allocators(tel, _budget):
    v = evaluate(_with(tel, memory_peak_mb=5000.0), _budget(), schema_errors=[],
                 memray_top=["  80.0 MB in 2 allocation(s): ones (numpy/_core/numeric.py:232)"])
    assert v.codes == ["memory_over_limit"]
    msg = v.messages[0]
    assert msg.startswith("quick: memory peak 5000 MB > 4096 MB limit (+22 %)")
    assert "top allocators" in msg and "numeric.py:232" in msg


def test_harness_peak_is_used_when_the_run_left_no_telemetry(_budget):
    v = evaluate(None, _budget(), crash_cause="killed by SIGKILL", observed_peak_mb=6000.0)
    assert set(v.codes) == {"crashed", "memory_over_limit"} and v.memory_source == "harness"


def test_schema_failure_names_json_path_and_rule(tel, _budget):
    bad = _with(tel, execution_time_s=-1)
    del bad["answer"]["sources"]
    errs = validation_errors(bad)
    v = evaluate(bad, _budget(), schema_errors=errs)
    assert "schema_invalid" in v.codes
    msg = next(m for m in v.messages if "schema" in m)
    assert "$.metrics.execution_time_s: minimum" in msg
    assert "$.answer: required ('sources' is a required property)" in msg


@pytest.mark.parametrize("metrics,code,text", [
    ({"claims": 0, "citations": 0, "valid_citations": 0, "citation_validity": None}, "no_claims",
     "quick: no claim produced"),
    ({"citation_validity": 0.2}, "citation_validity_below_floor", "quick: citation validity 0.20 < floor 0.50"),
    ({"citation_validity": None, "citations": 0}, "no_citations", "no claim cites a passage"),
    ({"citation_validity": 1.0, "grounded_citation_rate": 0.25}, "grounded_citations_below_floor",
     "quick: grounded citations 0.25 < floor 0.50"),
])
def test_quality_floor_fails_a_fast_run(tel, metrics, code, text, _budget):
    budget = dataclasses.replace(_budget(), grounded_floor=0.5)      # a profile that gates on grounding
    v = evaluate(_with(tel, execution_time_s=11.0, **metrics), budget, schema_errors=[])
    assert v.codes == [code] and v.time_status == "within"
    assert text in v.messages[0]


def test_an_ungrounded_citation_counts_against_the_floor_only_where_telemetry_has_grounding(tel, _budget):
    gated = dataclasses.replace(_budget(), grounded_floor=0.5)
    ok = _with(tel, execution_time_s=11.0, citation_validity=1.0, grounded_citation_rate=0.5)
    assert evaluate(ok, gated, schema_errors=[]).target_met
    old = _with(tel, execution_time_s=11.0, citation_validity=1.0)
    old["metrics"].pop("grounded_citation_rate", None)           # a schema 1.0 document: no grounding measured
    assert evaluate(old, gated, schema_errors=[]).target_met


def test_the_grounded_rate_is_not_gated_where_the_profile_sets_no_grounded_floor(tel, _budget):
    assert _budget().grounded_floor == 0.0                       # the shipped profiles: stored, not gated
    low = _with(tel, execution_time_s=11.0, citation_validity=1.0, grounded_citation_rate=0.1)
    assert evaluate(low, _budget(), schema_errors=[]).target_met


def test_failed_and_timed_out_runs_never_meet_the_target(tel, _budget):
    failed = copy.deepcopy(tel)
    failed["success"], failed["errors"] = False, ["RuntimeError: llama.cpp: failed to decode"]
    v = evaluate(failed, _budget(), schema_errors=[])
    assert v.codes == ["run_failed"] and "failed to decode" in v.messages[0]
    timed = copy.deepcopy(failed)
    timed["timed_out"] = True
    v = evaluate(timed, _budget(), schema_errors=[], timed_out=True)
    assert v.codes == ["timed_out"] and v.messages[0] == "quick: timed out (profile timeout 45 s)"


# -- through the plugin ---------------------------------------------------------------------------------------
def test_budget_scale_makes_the_session_fail_naming_the_budget(bench):
    bench.record_bench(kwargs="")
    r = bench.run("-m", "quick", "--research-budget-scale", "0.01")
    assert r.ret == pytest.ExitCode.TESTS_FAILED
    out = r.stdout.str()
    assert "quick: 18.6 s > 0.45 s budget (+4036 %) [linux-x86_64-2c, scaled x0.01]" in out
    assert "CI gate: targets missed" in out
    (rec,) = bench.records()
    assert rec.target_met is False and rec.outcome == "failed" and rec.budget["scale"] == 0.01
    assert rec.reasons[0].startswith("quick: 18.6 s > 0.45 s budget")
    assert rec.extra["reason_codes"] == ["time_over_budget"]


def test_memory_limit_failure_through_a_user_profiles_file(bench):
    f = bench.profiles_file("[profiles.quick.budgets.linux-x86_64-2c]\ntime_s = [10, 45]\nmemory_mb = 500\n")
    bench.record_bench()
    r = bench.run("-m", "quick", "--research-profiles-file", str(f))
    assert r.ret == 1
    r.stdout.fnmatch_lines(["*quick: memory peak 844 MB > 500 MB limit (+69 %)*"])


def test_schema_failure_through_the_plugin(bench):
    bench.record_bench(mutate='tel["metrics"]["ttft_s"] = "fast"')
    r = bench.run("-m", "quick")
    assert r.ret == 1
    r.stdout.fnmatch_lines(["*telemetry breaks schemas/telemetry.schema.json: $.metrics.ttft_s: type*"])
    (rec,) = bench.records()
    assert rec.schema_valid is False and rec.schema_errors[0].startswith("$.metrics.ttft_s: type")


def test_quality_floor_through_the_plugin(bench):
    bench.record_bench(mutate='tel["metrics"].update(claims=0, citations=0, valid_citations=0, citation_validity=None)')
    r = bench.run("-m", "quick")
    assert r.ret == 1
    r.stdout.fnmatch_lines(["*quick: no claim produced*", "*NO: quality*"])


def test_under_budget_run_passes_and_is_shown(bench):
    bench.record_bench()
    r = bench.run("-m", "quick", "--research-budget-scale", "2")
    assert r.ret == 0
    r.stdout.fnmatch_lines(["*18.6 s / 90 s*", "replayed[[]quick[]]: under budget: 1 of 1 run(s) faster than the 20 s "
                                               "lower bound (recorded, not failed; the budget may be stale)"])
    assert bench.records()[-1].extra["notes"][0].startswith("quick: 18.6 s < 20 s lower bound: under budget")
