"""Breakdown maths without a model: phase shares, native time split, cache hits, growth fits, scaled corpora."""
from __future__ import annotations

import pytest

from llm_research_bench.engine.corpus import load_corpus
from llm_research_bench.harness import records
from llm_research_bench.harness.records import metric_specs
from llm_research_bench.harness.analysis import breakdown, quality
from llm_research_bench.harness.run import scaling
from tests.harness.testdata import base_telemetry


def test_phase_shares_partition_the_run():
    t = base_telemetry()
    s = breakdown.phase_shares(t)
    assert set(s) == {f"phase_share_{p[:-2]}" for p in t["phases"]}
    assert set(s) <= set(metric_specs("breakdown"))
    assert sum(s.values()) == pytest.approx(1.0, abs=0.02)      # phases partition execution_time_s
    assert s["phase_share_streaming_inference"] == pytest.approx(13.9011 / 18.6137, rel=1e-4)


def test_native_split_and_cache_hits():
    t = base_telemetry()
    n = breakdown.native_split(t)
    pe = sum(c["native_prompt_eval_s"] for c in t["traces"]["calls"])
    assert n["prompt_eval_s"] == pytest.approx(pe)
    assert n["prompt_eval_share"] == pytest.approx(pe / t["metrics"]["execution_time_s"])
    assert 0 <= n["generation_other_share"] < 0.2
    m = t["metrics"]
    assert breakdown.prompt_cache_hit_share(t) == pytest.approx(1 - m["prompt_tokens_evaluated"] / m["prompt_tokens_total"])


def test_fits():
    assert breakdown.linear_fit([1, 2, 3], [2, 4, 6]) == pytest.approx((2.0, 0.0))
    assert breakdown.linear_fit([1, 1], [2, 3]) is None
    assert breakdown.loglog_exponent([1000, 3000, 10000], [1, 3, 10]) == pytest.approx(1.0)
    assert breakdown.loglog_exponent([1, 2], [0, 1]) is None
    g = breakdown.growth_summary([{"n": 1000, "t": 10.0}, {"n": 3000, "t": 30.0}, {"n": 2000, "t": None}], "n", ["t"])
    assert g["t"]["per_1k"] == pytest.approx(10.0) and g["t"]["ratio_max_min"] == pytest.approx(3.0)


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


@pytest.mark.parametrize("n", [1000, 3000, 3358, 10000])
def test_scaled_corpus_sizes(corpus, n):
    c = scaling.scaled_corpus(corpus, n)
    ids = [p.id for p in c.passages]
    assert len(ids) == n and len(set(ids)) == n
    assert all(all(g in set(ids) for g in q.gold_passage_ids) for q in c.questions)
    if n <= len(corpus.passages):
        assert ids == [p.id for p in corpus.passages[:n]]
    else:
        assert sum("#s" in i for i in ids) == n - len(corpus.passages)
        assert len(c.questions) == len(corpus.questions)
        texts = {p.text for p in corpus.passages}
        assert not any(p.text in texts for p in c.passages if "#s" in p.id)   # no split repeats a passage


def test_scaled_corpus_limit(corpus):
    with pytest.raises(ValueError, match="is the most"):
        scaling.scaled_corpus(corpus, 50_000)


def test_breakdown_metrics_documented_and_disjoint():
    specs = metric_specs("breakdown")
    for name, spec in specs.items():
        assert spec.get("x-better") in ("lower", "higher", "none") and "x-unit" in spec and spec.get("x-label"), name
    assert not set(specs) & set(metric_specs("telemetry")) and not set(specs) & set(metric_specs("quality"))
    assert records.validation_errors("breakdown", {"kind": "phases", "metrics": {"phase_share_plan": 0.2}}) == []
    assert records.validation_errors("breakdown", {"kind": "phases", "metrics": {"made_up": 1}})
