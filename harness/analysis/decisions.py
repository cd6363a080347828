"""Polar decisions, pure: each run's option probabilities decided by several calibration methods (METHODS), and per
arm and method the decision bench's figures against closed-book and the majority class."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import numpy as np

from ...engine.synthesis import calibrate, normalized, pick
from .quality import DECISIONS, flips, majority_class, mcnemar_exact_p, wilson_interval

#: raw: the model's own probabilities; content_free: divided by the run's content-free prior (the engine's
#: calibration); relative: content_free times the closed-book prompt's prior (only the bias the research conversation
#: adds is removed); batch_prior: divided by the arm's mean probabilities on the other half of the sample
#: (cross-fitted); domain_prior: batch_prior times the other half's gold label shares.
METHODS = ("raw", "content_free", "relative", "batch_prior", "domain_prior")


@dataclass
class DecisionRun:
    """One run's decision material: the stored raw probabilities and content-free prior (engine telemetry)."""
    question_id: str
    gold: str
    arm: str                                  # closed_book | progressive | single_shot
    raw: dict[str, float] | None              # None: the run failed (counts as wrong)
    prior: dict[str, float] | None = None
    decision: str | None = None               # what the engine decided
    time_s: float = 0.0
    calibration_s: float = 0.0                # what the content-free prior cost (0 when cached)
    calibration_cached: bool = False


def _mean_prior(runs: Sequence[DecisionRun]) -> dict[str, float]:
    ok = [normalized(r.raw) for r in runs if r.raw]
    if not ok:
        return {d: 1 / len(DECISIONS) for d in DECISIONS}
    return {d: float(np.mean([p[d] for p in ok])) for d in DECISIONS}


def _label_shares(runs: Sequence[DecisionRun]) -> dict[str, float]:
    golds = [r.gold for r in runs]
    return {d: (golds.count(d) + 1) / (len(golds) + len(DECISIONS)) for d in DECISIONS}   # add-one smoothing


def decide(runs: Sequence[DecisionRun], method: str, reference: Mapping[str, float] | None = None) -> list[str | None]:
    """Each run's decision by `method`; batch priors come from the other fold (even / odd positions), so no run is
    decided by a prior it helped measure. `reference`: the closed-book prompt's content-free prior (relative)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: one of {', '.join(METHODS)}")
    other = {f: [r for i, r in enumerate(runs) if i % 2 != f] for f in (0, 1)}
    batch, shares = ({f: fn(other[f]) for f in other} for fn in (_mean_prior, _label_shares))
    own_prior = method in ("content_free", "relative")
    out: list[str | None] = []
    for i, r in enumerate(runs):
        if not r.raw or (own_prior and r.prior is None) or (method == "relative" and reference is None):
            out.append(None)
            continue
        p = r.raw if method == "raw" else calibrate(r.raw, r.prior if own_prior else batch[i % 2])
        weight = reference if method == "relative" else shares[i % 2] if method == "domain_prior" else None
        out.append(pick({d: p[d] * weight[d] for d in p} if weight else p))
    return out


@dataclass
class ArmFigures:
    """One arm decided by one method, over the sample."""
    n: int
    correct: int
    accuracy: float | None
    accuracy_ci95: list[float] | None
    macro_f1: float | None
    confusion: dict[str, dict[str, int]]      # gold -> decided -> count ("none": no decision)
    decisions: dict[str, int]
    time_per_question_s: float | None
    right_to_wrong: int = 0                   # against closed-book: it was right there, wrong here
    wrong_to_right: int = 0
    p_vs_closed_book: float | None = None     # exact McNemar, paired by question
    p_vs_majority: float | None = None
    calibration_s_per_question: float | None = None
    failed_runs: int = 0                      # runs that ended without a decision (timeout, failure): left out
    closed_book_accuracy: float | None = None  # closed-book's and the majority class's on the same questions
    majority_accuracy: float | None = None
    yes_no_auc: float | None = None           # yes_no_separation (raw and the per-run calibrations only)
    yes_no_auc_p: float | None = None


def yes_no_separation(runs: Sequence[DecisionRun], calibrated: bool) -> tuple[float | None, float | None]:
    """The AUC of p(yes) / (p(yes) + p(no)) (raw, or over each run's own prior) between gold-yes and gold-no questions,
    and its Mann-Whitney p; a prior shared by every run moves the threshold, not the order, so it leaves the AUC."""
    scores: dict[str, list[float]] = {"yes": [], "no": []}
    for r in runs:
        if r.raw and r.gold in scores and (r.prior or not calibrated):
            p = calibrate(r.raw, r.prior) if calibrated and r.prior else normalized(r.raw)
            scores[r.gold].append(p["yes"] / max(p["yes"] + p["no"], 1e-12))
    if not scores["yes"] or not scores["no"]:
        return None, None
    from scipy.stats import mannwhitneyu
    res = mannwhitneyu(scores["yes"], scores["no"], alternative="two-sided")
    return float(res.statistic) / (len(scores["yes"]) * len(scores["no"])), float(res.pvalue)


def macro_f1(gold: Sequence[str], decided: Sequence[str | None]) -> float | None:
    """Macro-averaged F1 over yes/no/maybe (a missing decision counts as wrong for every label)."""
    if not gold:
        return None
    from sklearn.metrics import f1_score
    return float(f1_score(list(gold), [d or "none" for d in decided], labels=list(DECISIONS), average="macro",
                          zero_division=0))


def arm_figures(runs: Sequence[DecisionRun], decided: Sequence[str | None], base: Sequence[bool] | None,
                majority: str) -> ArmFigures:
    """The figures of one arm, `decided` by one method; `base`: closed-book's correctness on the same questions."""
    gold = [r.gold for r in runs]
    correct = [d is not None and d == g for d, g in zip(decided, gold)]
    n, k = len(runs), sum(correct)
    confusion = {g: {d: 0 for d in (*DECISIONS, "none")} for g in DECISIONS}
    for g, d in zip(gold, decided):
        confusion[g][d or "none"] += 1
    paired = base is not None and n
    rw, wr = flips(base, correct) if base is not None else (0, 0)
    return ArmFigures(
        n=n, correct=k, accuracy=k / n if n else None, accuracy_ci95=wilson_interval(k, n),
        macro_f1=macro_f1(gold, decided), confusion=confusion,
        decisions={d: sum(1 for x in decided if (x or "none") == d) for d in (*DECISIONS, "none")},
        time_per_question_s=float(np.mean([r.time_s for r in runs])) if n else None,
        right_to_wrong=rw, wrong_to_right=wr, p_vs_closed_book=mcnemar_exact_p(list(base), correct) if paired else None,
        p_vs_majority=mcnemar_exact_p([g == majority for g in gold], correct) if n else None,
        closed_book_accuracy=sum(base) / n if paired else None,
        majority_accuracy=sum(g == majority for g in gold) / n if n else None,
        calibration_s_per_question=float(np.mean([r.calibration_s for r in runs])) if n else None)


@dataclass
class DecisionSummary:
    """Per arm and method ("progressive:content_free") its figures on the questions all answered; the majority's."""
    n: int
    question_ids: list[str]
    majority_label: str
    majority: ArmFigures
    arms: dict[str, ArmFigures] = field(default_factory=dict)
    sample: dict = field(default_factory=dict)


def paired_runs(runs: Sequence[DecisionRun]) -> tuple[dict[str, list[DecisionRun]], dict[str, int]]:
    """Completed runs by arm on the questions closed-book completed, in its order (the later of two runs), and per arm
    the questions no run completed (left out: a run timed out by load says nothing about the decision)."""
    by_arm: dict[str, dict[str, DecisionRun]] = {}
    tried: dict[str, set[str]] = {}
    for r in runs:
        tried.setdefault(r.arm, set()).add(r.question_id)
        if r.raw:
            by_arm.setdefault(r.arm, {})[r.question_id] = r
    failed = {arm: len(qs - set(by_arm.get(arm, {}))) for arm, qs in tried.items()}
    base = by_arm.get("closed_book", {})
    return {arm: [rs[q] for q in base if q in rs] for arm, rs in by_arm.items()}, {a: k for a, k in failed.items() if k}


def decision_summary(runs: Sequence[DecisionRun], all_questions: Sequence[object],
                     sample: Mapping | None = None) -> DecisionSummary:
    """Every arm decided by every method, each compared with closed-book (raw) on the questions both completed."""
    label = majority_class(all_questions)[0]
    arms, failed = paired_runs(runs)
    base_runs = arms.get("closed_book", [])
    base_by_q = {r.question_id: d == r.gold for d, r in zip(decide(base_runs, "raw"), base_runs)}
    reference = next((r.prior for r in base_runs if r.prior), None)
    out: dict[str, ArmFigures] = {}
    for arm, rs in arms.items():
        base = [base_by_q[r.question_id] for r in rs]
        for m in METHODS:
            decided = decide(rs, m, reference)
            if any(d is not None for d in decided) or m == "raw":
                auc, p = yes_no_separation(rs, m != "raw") if m in ("raw", "content_free", "relative") else (None, None)
                out[f"{arm}:{m}"] = replace(arm_figures(rs, decided, base, label), failed_runs=failed.get(arm, 0),
                                            yes_no_auc=auc, yes_no_auc_p=p)
    maj = arm_figures(base_runs, [label] * len(base_runs), list(base_by_q.values()), label)
    return DecisionSummary(n=len(base_runs), question_ids=[r.question_id for r in base_runs], majority_label=label,
                           majority=maj, arms=out, sample=dict(sample or {}))
