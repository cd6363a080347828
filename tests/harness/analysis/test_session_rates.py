"""The seed's session-level rates (analysis/session.py): early_exit_rate, error_rate, novelty_score_average,
tokens_per_second and target_met per bench x profile, with their n; their comparison (Fisher's exact test,
Mann-Whitney U) and what it says at small n. TEST DATA records, no model."""
from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from llm_research_bench.harness import records
from llm_research_bench.harness.analysis import session
from llm_research_bench.harness.records import ResultRecord
from llm_research_bench.harness.report.terminal import rates_line

from ..testdata import record

SAMPLE_1_2 = json.loads((Path(__file__).parents[2] / "data" / "telemetry_quick_1_2.json").read_text())


def telemetry(*, exit_early: bool, novelties=(0.512,), tps: float = 30.0) -> dict:
    """The recorded 1.2 run, its early exit and the gate's judged batches set as asked."""
    t = copy.deepcopy(SAMPLE_1_2)
    t["early_exit"]["triggered"] = exit_early
    first = t["traces"]["gate"][0]
    t["traces"]["gate"] = [first] + [{**first, "batch": i + 1, "novelty": v, "reason":
                                      "below_threshold" if v < 0.6 else "above_threshold"}
                                     for i, v in enumerate(novelties)]
    t["metrics"]["tokens_per_second"] = tps
    return t


def run(question: str, tel: dict | None, *, outcome: str = "passed", codes=(), commit: str = "aaaa1111aaaa",
        warmup: bool = False, superseded: bool = False, profile: str = "quick") -> ResultRecord:
    r = record(tel, commit=commit, ts="2026-12-02T10:00:00+00:00", bench="pipeline", profile=profile,
               target_met=outcome == "passed", extra={"reason_codes": list(codes), "superseded": superseded,
                                                      "variant": question})
    r.test_id = f"benches/test_pipeline.py::test_pipeline[quick-{question}]"
    r.outcome, r.warmup = outcome, warmup
    return r


def session_runs() -> list[ResultRecord]:
    return [run("lace", telemetry(exit_early=True, novelties=(0.5,), tps=30.0)),
            run("lace", telemetry(exit_early=True, novelties=(0.5,)), warmup=True),             # not counted
            run("amblyopia", telemetry(exit_early=False, novelties=(0.7, 0.9), tps=40.0)),
            run("td001", telemetry(exit_early=False, novelties=(), tps=50.0)),                   # nothing judged
            run("td019", None, outcome=records.TIMED_OUT, codes=[records.RUN_TIMED_OUT])]


def test_each_rate_counts_the_measured_runs_it_is_over():
    (agg,) = session.aggregates(session_runs())
    assert (agg.bench, agg.profile, agg.runs, agg.instances) == ("pipeline", "quick", 4, 4)
    assert agg.error_rate == session.Rate(1, 4) and agg.error_rate.value == 0.25       # the timeout
    assert agg.early_exit_rate == session.Rate(1, 3)           # of the three runs that completed
    nov = agg.novelty_score_average
    assert (nov.n, nov.runs) == (3, 2) and nov.value == pytest.approx((0.5 + 0.7 + 0.9) / 3)
    assert (agg.tokens_per_second, agg.tokens_per_second_n) == (40.0, 3)
    assert agg.target_met_rate == session.Rate(3, 4) and agg.target_met is False
    assert {v.test_id.split("-")[-1].rstrip("]"): v.status for v in agg.verdicts} == {
        "lace": "met", "amblyopia": "met", "td001": "met", "td019": "missed"}


def test_benches_and_profiles_are_aggregated_apart_and_a_superseded_run_is_counted_once():
    recs = session_runs() + [run("lace", telemetry(exit_early=False), profile="balanced"),
                             run("lace", telemetry(exit_early=False), superseded=True, profile="balanced")]
    aggs = {a.key: a for a in session.aggregates(recs)}
    assert set(aggs) == {"pipeline[quick]", "pipeline[balanced]"}
    assert aggs["pipeline[balanced]"].early_exit_rate == session.Rate(0, 1)


def test_an_invalid_telemetry_document_counts_as_an_error():
    bad = run("lace", telemetry(exit_early=True), outcome="failed", codes=[records.SCHEMA_INVALID])
    bad.schema_valid = False
    (agg,) = session.aggregates([bad, run("td001", telemetry(exit_early=False))])
    assert agg.error_rate == session.Rate(1, 2) and agg.early_exit_rate == session.Rate(0, 1)


def test_the_document_part_validates_against_the_session_schema():
    (agg,) = session.aggregates(session_runs())
    d = dataclasses.asdict(agg)
    assert d["early_exit_rate"] == {"value": pytest.approx(1 / 3), "count": 1, "n": 3}
    assert d["novelty_score_average"]["n"] == 3 and d["tokens_per_second"] == 40.0
    from jsonschema import Draft202012Validator
    sub = {"$defs": records.schema("session")["$defs"], "$ref": "#/$defs/bench"}
    assert list(Draft202012Validator(sub).iter_errors(json.loads(json.dumps(d)))) == []


def test_the_footer_line_gives_the_three_rates_with_their_n_within_120_columns():
    line = rates_line(session.aggregates(session_runs()))
    assert line == "seed rates: early exit 1/3 (33%) runs | errors 1/4 (25%) | novelty average 0.70 over 3 judged batches"
    assert len(line) <= 120


def test_rates_are_compared_with_fishers_test_and_cannot_be_decided_at_small_n():
    base = session_runs()
    cur = [run("lace", telemetry(exit_early=False), commit="bbbb2222bbbb")]
    deltas = {d.metric: d for d in session.compare_rates(base, cur)}
    ee = deltas["early_exit_rate"]
    assert (ee.n_base, ee.n_cur, ee.method) == (3, 1, "fisher_exact") and ee.verdict == session.CANNOT_DECIDE
    assert deltas["novelty_score_average"].verdict == session.CANNOT_DECIDE


def test_a_large_enough_difference_in_error_rate_is_called_worse():
    ok = [run(f"q{i}", telemetry(exit_early=i % 2 == 0)) for i in range(12)]
    failing = [run(f"q{i}", None, outcome=records.CRASHED, codes=[records.RUN_CRASHED], commit="bbbb2222bbbb")
               for i in range(10)] + [run("q10", telemetry(exit_early=True), commit="bbbb2222bbbb")]
    d = {d.metric: d for d in session.compare_rates(ok, failing)}["error_rate"]
    assert (d.base, d.n_base, d.n_cur) == (0.0, 12, 11) and d.p_value < 0.001 and d.verdict == "worse"
    same = {d.metric: d for d in session.compare_rates(ok, ok)}
    assert same["error_rate"].verdict == session.NO_CHANGE and same["early_exit_rate"].verdict == session.NO_CHANGE


def test_an_older_record_is_read_with_the_current_metric_names():
    old = json.loads((Path(__file__).parents[2] / "data" / "telemetry_quick.json").read_text())
    assert old["schema_version"] == "1.0" and "decode_tokens_per_second" in old["metrics"]
    stored = record(old, commit="aaaa1111aaaa", ts="2026-12-02T10:00:00+00:00").as_dict()
    rec = ResultRecord.from_dict(json.loads(json.dumps(stored)))
    m = rec.telemetry["metrics"]
    assert m["tokens_per_second"] == old["metrics"]["decode_tokens_per_second"]
    assert m["context_utilization"] == old["metrics"]["context_utilisation"]
    assert m["streaming_chunks"] == old["metrics"]["chunks_streamed"]
    assert not {"decode_tokens_per_second", "context_utilisation", "chunks_streamed"} & set(m)
    assert rec.telemetry["schema_version"] == "1.0"
    assert records.renamed_metrics() == {"decode_tokens_per_second": "tokens_per_second",
                                         "context_utilisation": "context_utilization",
                                         "chunks_streamed": "streaming_chunks"}
    assert not set(records.renamed_metrics()) & set(records.metric_specs("telemetry"))


def test_a_current_document_holds_only_the_current_names_and_an_older_one_either():
    from llm_research_bench.engine.telemetry import validation_errors
    cur = copy.deepcopy(SAMPLE_1_2)
    assert validation_errors(cur) == []
    cur["metrics"]["decode_tokens_per_second"] = cur["metrics"].pop("tokens_per_second")
    assert any("decode_tokens_per_second" in e or "tokens_per_second" in e for e in validation_errors(cur))
    old = json.loads((Path(__file__).parents[2] / "data" / "telemetry_quick.json").read_text())
    assert validation_errors(old) == []
    assert validation_errors(records.current_names({"telemetry": old})["telemetry"]) == []
