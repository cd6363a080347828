"""Quality maths without a model: sampling, majority baseline, intervals, scoring, the early-exit trade-off."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from llm_research_bench.engine.claims import Citation, Claim
from llm_research_bench.engine.corpus import Question
from llm_research_bench.harness import records
from llm_research_bench.harness.records import metric_specs
from llm_research_bench.harness.analysis import quality
from llm_research_bench.harness.analysis.quality import QuestionOutcome
from tests.harness.testdata import base_telemetry, quality_summary_testdata


def _qs(answers):
    return [Question(str(100 + i), f"q{i}?", a, (f"{100 + i}:0",)) for i, a in enumerate(answers)]


def test_sample_is_fixed_by_seed_and_independent_of_load_order():
    qs = _qs(["yes", "no", "maybe"] * 20)
    a = quality.sample_questions(qs, 10, seed=7)
    b = quality.sample_questions(list(reversed(qs)), 10, seed=7)
    assert [q.id for q in a] == [q.id for q in b]
    assert len({q.id for q in a}) == 10
    assert [q.id for q in quality.sample_questions(qs, 10, seed=8)] != [q.id for q in a]


def test_sample_skips_unlabelled_and_refuses_too_many():
    qs = _qs(["yes", None, "no", None])
    assert {q.answer for q in quality.sample_questions(qs, 2)} == {"yes", "no"}
    with pytest.raises(ValueError, match="only 2 have"):
        quality.sample_questions(qs, 3)


def test_majority_class_and_tie_break():
    assert quality.majority_class(_qs(["yes", "no", "no", None])) == ("no", 2 / 3, 3)
    assert quality.majority_class(_qs(["maybe", "no"]))[0] == "no"          # tie: yes > no > maybe
    with pytest.raises(ValueError):
        quality.majority_class(_qs([None]))


def test_majority_on_the_real_pubmedqa_labels_is_yes_552():
    from llm_research_bench.engine.corpus import load_corpus
    label, share, n = quality.majority_class(load_corpus().questions)
    assert (label, n) == ("yes", 1000)
    assert share == pytest.approx(0.552)


@pytest.mark.parametrize("k,n,lo,hi", [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (20, 20, 0.8389, 1.0)])
def test_wilson_interval_known_values(k, n, lo, hi):
    a, b = quality.wilson_interval(k, n)
    assert a == pytest.approx(lo, abs=1e-4) and b == pytest.approx(hi, abs=1e-4)
    assert quality.wilson_interval(0, 0) is None


def test_mcnemar_exact():
    # 5 discordant pairs all one way: two-sided p = 2 * 0.5**5
    assert quality.mcnemar_exact_p([True] * 5 + [False], [False] * 5 + [False]) == pytest.approx(0.0625)
    assert quality.mcnemar_exact_p([True, False], [True, False]) == 1.0
    assert quality.mcnemar_exact_p([], []) is None
    with pytest.raises(ValueError):
        quality.mcnemar_exact_p([True], [])


def test_outcome_correct_and_precision():
    o = QuestionOutcome("1", "yes", "yes", "retrieval", 1.0, valid_cited_ids=["1:0", "1:0", "2:0", "3:1"],
                        gold_ids=["1:0", "1:1"], context_ids=["9:0", "1:1"])
    assert o.correct and o.gold_cited == 2 and o.citation_precision == 0.5 and o.gold_in_context
    none = QuestionOutcome("1", "yes", None, "retrieval", 1.0)
    assert not none.correct and none.citation_precision is None and not none.gold_in_context


def test_outcome_from_session_reads_claims_and_telemetry():
    tel = base_telemetry()      # real run: gold 21645374:0/1 were in batch 0
    claims = [Claim("a b c", [Citation("1", "21645374:0", True), Citation("9", None, False)]),
              Claim("d e f", [Citation("3", "18222909:2", True)])]
    tel["answer"]["sources"] = ["21645374:1"]
    session = SimpleNamespace(decision="no", claims=claims, telemetry=tel)
    q = Question("21645374", "Do mitochondria ...?", "yes", ("21645374:0", "21645374:1"))
    o = quality.outcome_from_session(session, q, "retrieval", 18.6)
    assert o.valid_cited_ids == ["21645374:0", "18222909:2", "21645374:1"]
    assert o.gold_cited == 2 and o.citation_precision == pytest.approx(2 / 3)
    assert o.citations == tel["metrics"]["citations"] + 1
    assert o.gold_in_context and not o.correct and o.tokens_generated == tel["metrics"]["tokens_generated"]


def test_summarize_arm_counts():
    outs = [QuestionOutcome("a", "yes", "yes", "r", 10.0, 100, 2, 3, ["a:0", "x:0"], ["a:0"], ["a:0"]),
            QuestionOutcome("b", "no", "yes", "r", 20.0, 50, 1, 1, ["y:0"], ["b:0"], []),
            QuestionOutcome("c", "maybe", None, "r", 30.0, 0, 0, 0, [], ["c:0"], ["c:0"], True)]
    s = quality.summarize_arm(outs)
    assert (s.n, s.correct) == (3, 1)
    assert s.accuracy == pytest.approx(1 / 3)
    assert s.decision_parse_rate == pytest.approx(2 / 3)
    assert s.citation_validity == pytest.approx(3 / 4)
    assert s.citation_precision == pytest.approx(1 / 3)
    assert s.gold_recall == pytest.approx(1 / 3) and s.context_gold_recall == pytest.approx(2 / 3)
    assert s.time_per_question_s == 20.0 and s.time_per_question_median_s == 20.0
    assert s.early_exit_fired == 1 and s.decisions == {"yes": 2, "none": 1}


def test_early_exit_tradeoff_is_paired():
    on = [QuestionOutcome("a", "yes", "yes", "on", 10.0, 100, early_exit_triggered=True),
          QuestionOutcome("b", "no", "yes", "on", 10.0, 100),
          QuestionOutcome("c", "no", "no", "on", 10.0, 100)]          # c has no 'off' run: not counted
    off = [QuestionOutcome("a", "yes", "no", "off", 20.0, 150), QuestionOutcome("b", "no", "no", "off", 20.0, 250)]
    t = quality.early_exit_tradeoff(on, off)
    assert t.n == 2 and t.tokens_on == 200 and t.tokens_off == 400 and t.tokens_saved == 200
    assert t.tokens_saved_share == 0.5 and t.time_saved_share == 0.5
    assert t.accuracy_on == 0.5 and t.accuracy_off == 0.5 and t.accuracy_change == 0.0
    assert t.fired == 1 and t.changed_answers == 2
    assert quality.early_exit_tradeoff(on, []).n == 0


def test_summary_is_schema_valid_and_consistent():
    s = quality_summary_testdata()
    assert records.validation_errors("quality", s) == []
    m = s["metrics"]
    assert set(m) == set(metric_specs("quality"))
    assert m["accuracy"] == s["arms"]["retrieval"]["accuracy"] == 0.5
    assert m["accuracy_majority"] == s["majority"]["accuracy"]
    assert m["accuracy_gain_over_majority"] == pytest.approx(m["accuracy"] - m["accuracy_majority"])
    assert s["bounds"]["accuracy"][0] < m["accuracy"] < s["bounds"]["accuracy"][1]
    assert s["early_exit"]["n"] == 5
    broken = dict(s, metrics=dict(m, accuracy=1.7))
    assert records.validation_errors("quality", broken)


def test_every_quality_metric_has_unit_direction_label_and_no_name_clash():
    for name, spec in metric_specs("quality").items():
        assert spec.get("x-better") in ("lower", "higher", "none"), name
        assert "x-unit" in spec and spec.get("x-label") and spec.get("description"), name
    assert not set(metric_specs("quality")) & set(metric_specs("telemetry"))


def test_sample_sizes_fit_the_documented_quick_time_budget():
    n, n_off = quality.SAMPLE_SIZES["quick"]
    # per-run times of the quick profile on the 2-core CI machine (docs/measurements.md): under 15 minutes.
    assert n * 20 + n_off * 20 + n * 8 + n * 2 < 15 * 60
    assert n_off <= n and not math.isnan(n)


# -- free-text answers, grounded citations, single-shot arm --------------------------------------------------------

def test_answer_overlap_is_rouge_l_without_prefix_and_citations():
    gold = "Decorate the test with the timeout marker"
    assert quality.answer_overlap("Answer: Decorate the test with the timeout marker [1][2].", gold) == 1.0
    assert 0 < quality.answer_overlap("Use the timeout marker on the test [3].", gold) < 1
    assert quality.answer_overlap("", gold) == 0.0


def test_paired_difference_and_bootstrap_interval():
    d = quality.paired_difference([0.5, 0.6, 0.7, 0.9], [0.4, 0.6, 0.5, 0.6])
    assert d.n == 4 and d.mean_change == pytest.approx(0.15)
    lo, hi = d.ci95
    assert lo <= 0.15 <= hi and d.p_value is not None
    same = quality.paired_difference([0.5, 0.5], [0.5, 0.5])
    assert same.mean_change == 0 and same.p_value is None
    assert quality.paired_difference([], []).n == 0
    assert quality.bootstrap_mean_ci([1.0]) is None
    assert quality.bootstrap_mean_ci([0.0, 1.0, 0.5], seed=3) == quality.bootstrap_mean_ci([0.0, 1.0, 0.5], seed=3)


def _open_qs(n):
    return [Question(f"td{i:03d}", f"How does thing {i} work?", f"It works by mechanism number {i}.", (f"p:{i}",))
            for i in range(n)]


def test_sampling_a_free_text_corpus():
    qs = _open_qs(6) + [Question("x", "unanswered?", None, ())]
    assert not quality.is_polar_set(qs) and quality.is_polar_set(_qs(["yes", "no"]))
    got = quality.sample_questions(qs, 6)
    assert {q.id for q in got} == {q.id for q in qs if q.answer}


def _ft(arm, qid, overlap, tokens=100, grounded=1, cits=2, fired=False, t=10.0):
    return QuestionOutcome(qid, "gold text", None, arm, t, tokens, overlap=overlap, grounded=grounded,
                           all_citations=cits, early_exit_triggered=fired)


def test_free_text_summary_scores_overlap_and_has_no_majority():
    qs = _open_qs(4)
    r = [_ft("retrieval", q.id, 0.3 + 0.1 * i, 100, 1, 2, fired=i < 2) for i, q in enumerate(qs)]
    off = [_ft("retrieval_no_early_exit", q.id, 0.3 + 0.1 * i, 200, 2, 2, t=20.0) for i, q in enumerate(qs)]
    ss = [_ft("single_shot", q.id, 0.2, 50, 1, 1, t=5.0) for q in qs]
    cb = [_ft("closed_book", q.id, 0.1, 30, 0, 0, t=1.0) for q in qs]
    typed = quality.quality_summary({"retrieval": r, "closed_book": cb, "retrieval_no_early_exit": off,
                                     "single_shot": ss}, profile="thorough", seed=1, sample=qs, all_questions=qs)
    s = typed.as_dict()
    assert records.validation_errors("quality", s) == []
    assert typed.free_text and quality.QualitySummary.from_dict(s) == typed
    assert s["answers"] == "free_text" and s["majority"] is None and "retrieval_vs_majority" not in s["comparisons"]
    m = s["metrics"]
    assert m["accuracy"] is None and m["overlap"] == pytest.approx(0.45) and m["overlap_single_shot"] == 0.2
    assert m["grounded_citation_rate_sample"] == 0.5 and m["grounded_citation_rate_single_shot"] == 1.0
    assert m["early_exit_fired_share"] == 0.5 and m["early_exit_tokens_saved_share"] == 0.5
    assert m["early_exit_overlap_change"] == 0 and m["early_exit_grounded_change"] == pytest.approx(-0.5)
    assert s["early_exit"]["grounded_change"]["p_value"] is not None
    c = s["comparisons"]["retrieval_vs_single_shot"]
    assert c["overlap_change"] == pytest.approx(0.25) and c["time_ratio"] == 2.0 and c["accuracy_change"] is None
    assert s["bounds"]["overlap"][0] <= 0.45 <= s["bounds"]["overlap"][1]
    from llm_research_bench.harness.report.terminal import quality_lines
    text = "\n".join(quality_lines(typed))
    assert "ROUGE-L 0.45" in text and "single-shot RAG" in text and "majority" not in text


def test_polar_summary_has_the_single_shot_arm_and_comparison():
    s = quality_summary_testdata()
    assert s["answers"] == "decision" and s["arms"]["single_shot"]["n"] == 0
    assert s["comparisons"]["retrieval_vs_majority"]["n"] == 10
    typed = quality.QualitySummary.from_dict(s)
    assert not typed.free_text and typed.as_dict() == s and typed.score(typed.arm("retrieval"))[0] == 0.5


def test_a_record_carries_a_typed_summary_or_none():
    s = quality_summary_testdata()
    rec = SimpleNamespace(extra={"quality": s})
    typed = quality.QualitySummary.of_record(rec)
    assert typed is not None and typed.arm("retrieval").n == 10 and typed.majority.label == "yes"
    assert quality.QualitySummary.of_record(SimpleNamespace(extra={"quality": {"arms": {}}})) is None
    assert quality.QualitySummary.of_record(SimpleNamespace(extra=None)) is None


def test_claim_mode_arms_are_summarized_compared_and_printed_when_run():
    qs = _open_qs(4)
    runs = {"retrieval": [_ft("retrieval", q.id, 0.3, grounded=2, cits=2) for q in qs],
            "closed_book": [_ft("closed_book", q.id, 0.1, cits=0, grounded=0) for q in qs],
            "retrieval_other_claim_mode": [_ft("retrieval_other_claim_mode", q.id, 0.3, grounded=1) for q in qs],
            "retrieval_free": [_ft("retrieval_free", q.id, 0.2, grounded=0) for q in qs]}
    typed = quality.quality_summary(runs, profile="quick", seed=1, sample=qs, all_questions=qs)
    s = typed.as_dict()
    assert records.validation_errors("quality", s) == []
    assert s["arms"]["retrieval_free"]["grounded_citation_rate"] == 0.0
    assert s["arms"]["retrieval_other_claim_mode"]["grounded_citation_rate"] == 0.5
    assert s["comparisons"]["retrieval_vs_retrieval_free"]["n"] == 4
    from llm_research_bench.harness.report.terminal import quality_lines
    text = "\n".join(quality_lines(typed))
    assert "other claim mode:" in text and "free claims (no grammar):" in text
    without = "\n".join(quality_lines(quality.quality_summary(
        {k: runs[k] for k in ("retrieval", "closed_book")}, profile="quick", seed=1, sample=qs, all_questions=qs)))
    assert "other claim mode" not in without and "free claims" not in without
