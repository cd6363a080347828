"""A bench with several instances (one per question, each its own series through extra['variant']): the session
document (--research-json) validates against schemas/session.schema.json and pools the instances' runs into the
seed's rates per bench x profile; the summary's footer shows them; `research-bench compare`, `list` and `report`
keep the questions apart and compare the rates with their n. Runs through the replaying test double."""
from __future__ import annotations

import json
import os

from llm_research_bench.harness import records
from llm_research_bench.harness.commands import cli

QUESTIONS_BENCH = '''
import pytest
pytestmark = pytest.mark.pipeline

@pytest.mark.parametrize("question", ["q-one", "q-two", "q-three"])
def test_pipeline(research_bench, profile, question):
    research_bench.run(f"question {question}?", extra={"variant": question})
'''


def test_several_questions_of_one_bench_pool_into_its_rates_and_stay_apart_as_series(bench, capsys):
    bench.pytester.makepyfile(test_bench=QUESTIONS_BENCH)
    first = bench.commit("one")
    js = bench.pytester.path / "out" / "session.json"
    r = bench.run("-m", "quick", "--research-json", str(js))
    assert r.ret == 0, r.stdout.str()
    footer = [line for line in r.outlines if line.startswith("seed rates:")]
    assert footer == ["seed rates: early exit 0/3 (0%) runs | errors 0/3 (0%) | novelty average no batch judged"]
    doc = json.loads(js.read_text())
    assert records.validation_errors("session", doc) == []
    (agg,) = doc["benches"]
    assert (agg["bench"], agg["profile"], agg["runs"], agg["instances"]) == ("pipeline", "quick", 3, 3)
    assert agg["early_exit_rate"] == {"value": 0.0, "count": 0, "n": 3} and agg["error_rate"]["n"] == 3
    assert agg["tokens_per_second"] is not None and agg["target_met"] is True
    assert sorted(v["test_id"].split("[")[1] for v in agg["verdicts"]) == ["q-one-quick]", "q-three-quick]", "q-two-quick]"]
    assert doc["rates"]["error_rate"] == {"value": 0.0, "count": 0, "n": 3}

    bench.commit("two")
    assert bench.run("-m", "quick").ret == 0
    os.chdir(bench.pytester.path)
    capsys.readouterr()
    assert cli.main(["compare", first, "HEAD", "--results-dir", str(bench.results)]) == 0
    out = capsys.readouterr().out
    for q in ("q-one", "q-two", "q-three"):
        assert f"pipeline[quick]/{q}" in out
    assert "rate pipeline[quick] error_rate: 0% (n=3) -> 0% (n=3), fisher_exact p=1: cannot decide" in out
    assert cli.main(["compare", first, "HEAD", "--results-dir", str(bench.results), "--format", "markdown"]) == 0
    assert "- rate pipeline[quick] early_exit_rate: 0% (n=3) -> 0% (n=3)" in capsys.readouterr().out
    assert cli.main(["compare", first, "HEAD", "--results-dir", str(bench.results), "--format", "json"]) == 0
    rates = json.loads(capsys.readouterr().out)["rates"]
    assert {(d["metric"], d["n_base"], d["n_cur"], d["verdict"]) for d in rates} == {
        (m, 3, 3, "cannot decide") for m in ("early_exit_rate", "error_rate", "target_met_rate")} | {
        ("novelty_score_average", 0, 0, "cannot decide")}
    assert cli.main(["list", "--results-dir", str(bench.results), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(row["records"] for row in rows) == [3, 3]
    html = bench.pytester.path / "report.html"
    assert cli.main(["report", "--out", str(html), "--results-dir", str(bench.results), "--no-commit-links"]) == 0
    text = html.read_text()
    assert all(f"pipeline[quick]/{q}" in text for q in ("q-one", "q-two", "q-three"))
