"""Recommendation rules: each fires only when the numbers call for it, and says those numbers."""
from __future__ import annotations

import copy
import dataclasses

from llm_research_bench.harness.analysis import recommend
from llm_research_bench.harness.analysis.quality import QualitySummary
from tests.harness.testdata import BUDGET, TESTDATA_MACHINE, history_records, quality_summary_testdata, record, varied_telemetry


def rules(recs):
    return {r.rule for r in recs}


def test_fast_run_gets_no_budget_advice():
    out = recommend.recommend_runs([varied_telemetry(1.0)], budget=BUDGET, series="s")
    assert not rules(out) & {"over_budget", "over_budget_prompt_eval", "over_budget_decode", "over_budget_plan"}


def test_over_budget_with_prompt_eval_dominating_says_its_numbers():
    a = recommend.recommend_runs([varied_telemetry(3.0)], budget=BUDGET, series="research[quick]")
    b = recommend.recommend_runs([varied_telemetry(4.0)], budget=BUDGET, series="research[quick]")
    ra = next(r for r in a if r.rule == "over_budget_prompt_eval")
    rb = next(r for r in b if r.rule == "over_budget_prompt_eval")
    assert ra.severity == "warn" and "55.8 s" in ra.message and "45.0 s" in ra.message
    assert "context window (now 4096)" in ra.message and "3,505 prompt tokens" in ra.message
    assert ra.evidence["median_time_s"] == varied_telemetry(3.0)["metrics"]["execution_time_s"]
    assert ra.message != rb.message                       # the numbers, not a canned sentence


def test_over_budget_decode_and_plan_variants():
    t = varied_telemetry(3.0)
    for c in t["traces"]["calls"]:
        c["native_decode_s"], c["native_prompt_eval_s"] = c["native_prompt_eval_s"], 0.1
    assert "over_budget_decode" in rules(recommend.recommend_runs([t], budget=BUDGET))
    p = varied_telemetry(3.0)
    p["phases"]["plan_s"] = 40.0
    for c in p["traces"]["calls"]:
        c["native_decode_s"] = c["native_prompt_eval_s"] = 0.1
    p["corpus"]["index_cache_hit"] = False
    msg = next(r for r in recommend.recommend_runs([p], budget=BUDGET) if r.rule == "over_budget_plan").message
    assert "index built cold in 1 of 1 runs" in msg


def test_memory_pressure():
    assert "memory_pressure" not in rules(recommend.recommend_runs([varied_telemetry()]))
    hot = recommend.recommend_runs([varied_telemetry(mem_factor=4.5)])
    r = next(x for x in hot if x.rule == "memory_pressure")
    assert "3,798 MB" in r.message and "93%" in r.message and "4,096 MB" in r.message
    assert r.evidence["memory_efficiency"] > 0.85


def test_early_exit_never_fires_needs_three_runs_and_no_trigger():
    assert "early_exit_never_fires" not in rules(recommend.recommend_runs([varied_telemetry()] * 2))
    three = recommend.recommend_runs([varied_telemetry()] * 3)
    r = next(x for x in three if x.rule == "early_exit_never_fires")
    assert "0.604" in r.message and "0.15" in r.message and "context_full 3" in r.message
    fired = copy.deepcopy(varied_telemetry())
    fired["early_exit"] = {"triggered": True, "batch": 2, "reason": "novelty_below_threshold"}
    assert "early_exit_never_fires" not in rules(recommend.recommend_runs([varied_telemetry()] * 2 + [fired]))


def test_citation_validity_low():
    low = varied_telemetry(citation_validity=0.3, citations=10, valid_citations=3, invalid_citations=7)
    r = next(x for x in recommend.recommend_runs([low], citation_floor=0.5) if x.rule == "citation_validity_low")
    assert "30%" in r.message and "7 of 10" in r.message and "50%" in r.message
    assert "citation_validity_low" not in rules(recommend.recommend_runs([varied_telemetry()], citation_floor=0.5))


def test_decode_vs_raw():
    t = varied_telemetry()
    r = next(x for x in recommend.recommend_runs([t], raw_decode_tps=200.0) if x.rule == "decode_below_raw")
    assert "43%" in r.message and "200 tok/s" in r.message
    assert "decode_below_raw" not in rules(recommend.recommend_runs([t], raw_decode_tps=90.0))
    assert "decode_below_raw" not in rules(recommend.recommend_runs([t]))


def test_prefix_reuse_poor():
    r = next(x for x in recommend.recommend_runs([varied_telemetry(prefix_reuse_ratio=2.1)]) if x.rule == "prefix_reuse_poor")
    assert "2.10x" in r.message


def test_quality_rules():
    q = quality_summary_testdata()
    assert "accuracy_not_above_majority" not in rules(recommend.recommend_quality(QualitySummary.from_dict(q)))
    bad = copy.deepcopy(q)
    bad["metrics"].update(accuracy=0.3, accuracy_closed_book=0.35, context_gold_recall=0.2)
    out = recommend.recommend_quality(QualitySummary.from_dict(bad), series="quality[quick]")
    assert {"accuracy_not_above_majority", "retrieval_no_gain", "gold_not_in_context"} <= rules(out)
    msg = next(r for r in out if r.rule == "accuracy_not_above_majority").message
    assert "30%" in msg and "40%" in msg and "'yes'" in msg
    costly = copy.deepcopy(q)
    costly["early_exit"].update(accuracy_change=-0.2, tokens_saved_share=0.25, accuracy_on=0.4, accuracy_off=0.6)
    r = next(x for x in recommend.recommend_quality(QualitySummary.from_dict(costly))
             if x.rule == "early_exit_costs_accuracy")
    assert "20%" in r.message and "25.0%" in r.message


def test_recommend_over_records_uses_newest_commit_of_this_machine():
    recs = history_records()
    out = recommend.recommend(recs)
    assert all(r.series for r in out)
    assert "early_exit_never_fires" in rules(out)
    # the other machine's slow run (5x) must not produce an over-budget warning
    assert not any(r.rule.startswith("over_budget") for r in out)
    # a raw decode rate stored by a breakdown record feeds the decode rule
    recs.append(record(None, commit="dddd4444dddd", ts="2026-11-23T12:00:00.000000+00:00", bench="breakdown_decode",
                       machine=TESTDATA_MACHINE, extra={"breakdown": {"kind": "decode_vs_raw", "metrics": {
                           "raw_decode_tokens_per_second": 300.0}}}, budget=None))
    assert "decode_below_raw" in rules(recommend.recommend(recs))
    assert str(out[0]).startswith("[")
    assert dataclasses.asdict(out[0])["message"] == out[0].message
