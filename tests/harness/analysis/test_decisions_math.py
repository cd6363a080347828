"""The decision bench's analysis (analysis/decisions.py) on hand-made runs: methods, flips, McNemar, macro-F1; the
flips against closed-book in the decision and quality reports."""
from types import SimpleNamespace

import pytest

from llm_research_bench.harness.analysis.decisions import (DecisionRun, arm_figures, decide, decision_summary, flips,
                                                           macro_f1, yes_no_separation)
from llm_research_bench.harness.report.decisions import summary_lines

YES = {"yes": 0.7, "no": 0.2, "maybe": 0.1}
NO = {"yes": 0.3, "no": 0.6, "maybe": 0.1}
BIAS = {"yes": 0.8, "no": 0.1, "maybe": 0.1}


def run(q, gold, arm, raw, prior=None, t=1.0):
    return DecisionRun(str(q), gold, arm, raw, prior, None, t)


def test_raw_and_content_free_decisions():
    rs = [run(1, "no", "progressive", YES, BIAS), run(2, "yes", "progressive", YES, {"yes": 0.1, "no": 0.8,
                                                                                    "maybe": 0.1})]
    assert decide(rs, "raw") == ["yes", "yes"]
    assert decide(rs, "content_free") == ["no", "yes"]       # 0.7/0.8 < 0.2/0.1


def test_relative_keeps_the_closed_book_prompts_bias():
    cb_prior = {"yes": 0.7, "no": 0.2, "maybe": 0.1}
    rs = [run(1, "yes", "progressive", {"yes": 0.4, "no": 0.5, "maybe": 0.1}, {"yes": 0.3, "no": 0.6, "maybe": 0.1})]
    assert decide(rs, "raw") == ["no"]
    # content-free: 1.33 / 0.83 / 1 -> yes; relative: x 0.7 / 0.2 / 0.1 -> yes, and maybe never wins
    assert decide(rs, "content_free") == ["yes"] and decide(rs, "relative", cb_prior) == ["yes"]
    assert decide(rs, "relative") == [None]
    same = [run(1, "no", "closed_book", {"yes": 0.3, "no": 0.5, "maybe": 0.2}, cb_prior)]
    assert decide(same, "relative", cb_prior) == decide(same, "raw")          # closed-book stays raw


def test_a_failed_run_and_a_missing_prior_decide_nothing():
    rs = [run(1, "yes", "progressive", None), run(2, "yes", "progressive", YES)]
    assert decide(rs, "raw") == [None, "yes"] and decide(rs, "content_free") == [None, None]


def test_batch_prior_is_cross_fitted():
    # fold 0 (positions 0, 2) is decided by the mean of fold 1 (positions 1, 3) and vice versa
    rs = [run(1, "no", "p", NO), run(2, "yes", "p", YES), run(3, "yes", "p", YES), run(4, "yes", "p", YES)]
    assert decide(rs, "batch_prior")[0] == "no"
    # fold 1's prior is the mean of NO and YES: yes 0.5, no 0.4 -> YES stays yes (1.4 > 0.5 ...)
    assert decide(rs, "batch_prior")[1] == "yes"
    with pytest.raises(ValueError):
        decide(rs, "platt")


def test_domain_prior_weighs_by_the_other_folds_label_shares():
    rs = [run(1, "yes", "p", {"yes": 0.3, "no": 0.3, "maybe": 0.4}), run(2, "yes", "p", {"yes": 0.3, "no": 0.3, "maybe": 0.4})]
    # batch prior = the run itself: calibrated uniform; the other fold's labels (all yes) then decide
    assert decide(rs, "domain_prior") == ["yes", "yes"]


def test_flips_count_both_directions():
    assert flips([True, True, False, False], [True, False, True, False]) == (1, 1)
    assert flips([True, True], [False, False]) == (2, 0)


def test_macro_f1_counts_a_missing_decision_as_wrong():
    assert macro_f1(["yes", "no", "maybe"], ["yes", "no", "maybe"]) == pytest.approx(1.0)
    assert macro_f1(["yes", "no"], ["yes", None]) == pytest.approx((1.0 + 0.0 + 0.0) / 3)
    assert macro_f1([], []) is None


def test_arm_figures_confusion_flips_and_mcnemar():
    rs = [run(i, g, "p", YES) for i, g in enumerate(["yes", "no", "yes", "maybe"])]
    a = arm_figures(rs, ["yes", "yes", "no", None], base=[True, False, True, False], majority="yes")
    assert (a.n, a.correct, a.accuracy) == (4, 1, 0.25)
    assert a.confusion["no"]["yes"] == 1 and a.confusion["maybe"]["none"] == 1 and a.confusion["yes"]["no"] == 1
    assert (a.right_to_wrong, a.wrong_to_right) == (1, 0)
    assert a.decisions == {"yes": 2, "no": 1, "maybe": 0, "none": 1}
    assert a.p_vs_closed_book == pytest.approx(1.0) and 0 < a.accuracy_ci95[0] < 0.25 < a.accuracy_ci95[1]


def test_decision_summary_pairs_every_arm_with_closed_book():
    qs = [SimpleNamespace(answer=a) for a in ["yes"] * 6 + ["no"] * 3 + ["maybe"]]
    rs = [run(1, "yes", "closed_book", YES, BIAS), run(2, "no", "closed_book", YES, BIAS),
          run(1, "yes", "progressive", YES, BIAS), run(2, "no", "progressive", NO, BIAS),
          run(3, "yes", "progressive", YES, BIAS),           # q3 has no closed-book run: left out
          run(4, "no", "closed_book", YES, BIAS), run(4, "no", "progressive", None)]   # failed: left out
    s = decision_summary(rs, qs, sample={"seed": 1})
    assert s.n == 3 and s.majority_label == "yes" and s.majority.correct == 1
    p = s.arms["progressive:raw"]
    assert p.n == 2 and p.correct == 2 and (p.right_to_wrong, p.wrong_to_right) == (0, 1) and p.failed_runs == 1
    assert p.closed_book_accuracy == 0.5 and p.majority_accuracy == 0.5
    assert s.arms["closed_book:raw"].correct == 1 and s.arms["progressive:content_free"].n == 2
    assert s.arms["closed_book:raw"].failed_runs == 0
    lines = summary_lines(s)
    assert max(len(x) for x in lines) <= 120
    header = next(x for x in lines if x.strip().startswith("arm:method"))
    assert header.split()[-8:] == ["R->W", "W->R", "p", "cb", "p", "maj", "s/q", "fail"]
    row = next(x.split() for x in lines if x.strip().startswith("progressive:raw"))
    assert row[1] == "2" and row[2] == "100.0%" and (row[-6], row[-5]) == ("0", "1") and row[-1] == "1"
    assert any(x.strip().startswith("confusion progressive:raw") for x in lines)


def test_the_quality_report_shows_each_arms_flips_against_closed_book():
    from llm_research_bench.engine.corpus import Question
    from llm_research_bench.harness.analysis import quality
    from llm_research_bench.harness.report.terminal import quality_lines
    qs = [Question(str(i), f"q{i}?", g, (f"{i}:0",)) for i, g in enumerate(["yes", "no", "yes", "no"])]

    def outs(arm, decided):
        return [quality.QuestionOutcome(q.id, q.answer, d, arm, 1.0) for q, d in zip(qs, decided)]
    cb = outs("closed_book", ["yes", "no", "no", "yes"])                  # right, right, wrong, wrong
    s = quality.quality_summary({"closed_book": cb, "retrieval": outs("retrieval", ["no", "no", "yes", "no"]),
                                 "single_shot": outs("single_shot", ["yes", "yes", "yes", "yes"])},
                                sample=qs, all_questions=qs, profile="quick", seed=1)
    text = "\n".join(quality_lines(s))
    assert "decisions vs closed-book (right -> wrong / wrong -> right): progressive 1 / 2, single-shot 1 / 1\n" in text
    assert "early exit off" not in text                       # not run: no counts to show


def test_yes_no_separation_is_the_auc_of_p_yes_over_yes_and_no():
    hi, lo = {"yes": 0.6, "no": 0.2, "maybe": 0.2}, {"yes": 0.2, "no": 0.6, "maybe": 0.2}
    rs = [run(1, "yes", "p", hi, BIAS), run(2, "no", "p", lo, BIAS), run(3, "maybe", "p", lo, BIAS)]
    auc, p = yes_no_separation(rs, calibrated=False)
    assert auc == 1.0 and 0 < p <= 1                       # maybe questions do not count
    assert yes_no_separation(rs, calibrated=True)[0] == 1.0   # one prior shared by every run: the order stays
    flipped = [run(1, "yes", "p", lo, {"yes": 0.1, "no": 0.8, "maybe": 0.1}), run(2, "no", "p", hi, BIAS)]
    assert yes_no_separation(flipped, calibrated=False)[0] == 0.0
    assert yes_no_separation(flipped, calibrated=True)[0] == 1.0    # per-run priors can reorder
    assert yes_no_separation(rs[:1], calibrated=False) == (None, None)
