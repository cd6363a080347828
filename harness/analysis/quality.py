"""Answer quality: pure logic (sampling, scoring, baselines, the early-exit trade-off, arms compared paired).

No model here: the quality bench (benches/test_quality.py) runs the engine and hands the sessions to these
functions; the unit tests feed them hand-made outcomes. The summary a bench stores is described (names,
units, direction) by schemas/quality.schema.json, the one list of quality metrics.

Definitions (per question q with gold answer g and gold abstract G = the question's own passages):
- correct:             the decision parsed from the synthesis equals g; no parsable decision counts as wrong.
- citation validity:   valid citations / all citations (claims and answer), summed over the sample.
- citation precision:  of the valid citations (every citation instance in the claims, plus the passages the
                       answer cites), the share naming a passage of G; summed over the sample (micro).
- gold recall:         share of questions that cite at least one passage of G.
- context gold recall: share of questions whose context held at least one passage of G (retrieval + gating).
- majority baseline:   always answer the majority class of the whole labelled set, scored on the sample.
- grounded rate:       grounded citations / all citations (claims and answer sentences; engine.grounding).
- overlap:             for a corpus with free-text gold answers (any questions.jsonl whose answers are not
                       yes/no/maybe): ROUGE-L F1 (Google's rouge-score, Porter stemming) of the answer (its
                       "Answer:" prefix and [n] citations removed) against the gold answer; per arm the mean with
                       a seeded bootstrap 95 % interval. Such a corpus has no decision and no majority baseline.

Arms: retrieval (progressive, early exit on: the engine as shipped), retrieval_no_early_exit (same, gate off, the
first questions of the sample), single_shot (plain RAG: top passages that fit, one prompt, one answer),
closed_book (no retrieval). Paired comparisons use the same questions: exact McNemar for decisions, the Wilcoxon
signed-rank test (scipy) and a bootstrap interval of the mean difference for per-question numbers (overlap,
grounded rate).
"""
from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

from .. import records

SCHEMA_PATH = records.SCHEMAS_DIR / "quality.schema.json"

#: The seed of the question sample. Changing it changes which questions are asked, so records made with
#: different seeds are not comparable; it is stored in every quality record.
QUALITY_SEED = 20240527

#: Questions per profile, and how many of them (the first ones of the same sample) also run with early exit
#: off. The quick sizes keep `make quality` under ~15 min on the 2-core CI machine: a quick retrieval run of
#: SmolLM2-135M takes ~20 s, a single-shot run ~8 s, a closed-book run ~2 s, so 20 x 20 s + 10 x 20 s + 20 x 8 s
#: + 20 x 2 s ~ 13 min.
SAMPLE_SIZES: dict[str, tuple[int, int]] = {
    "quick": (20, 10),
    "balanced": (40, 20),
    "thorough": (60, 30),
}
DECISIONS = ("yes", "no", "maybe")


def schema() -> dict:
    return records.schema("quality")


def metric_specs() -> dict[str, dict]:
    """Quality metric name -> its schema entry (x-unit, x-better, x-label, description)."""
    return records.metric_specs("quality")


def validation_errors(summary: dict) -> list[str]:
    return records.validation_errors("quality", summary)


# -- sampling and baselines ----------------------------------------------------------------------------------

def is_polar_set(questions: Iterable[Any]) -> bool:
    """Whether the questions' gold answers are yes/no/maybe labels (PubMedQA) rather than free text."""
    answers = [getattr(q, "answer", None) for q in questions if getattr(q, "answer", None)]
    return bool(answers) and all(a in DECISIONS for a in answers)


def sample_questions(questions: Iterable[Any], n: int, seed: int = QUALITY_SEED) -> list[Any]:
    """A fixed sample of n answered questions: the same n for the same seed and question set, whatever the
    order the questions were loaded in (sorted by id first). Questions without a gold answer are never drawn;
    in a labelled set (yes/no/maybe) only labelled ones are."""
    qs = list(questions)
    polar = is_polar_set(qs)
    ok = [q for q in qs if (getattr(q, "answer", None) in DECISIONS if polar else bool(getattr(q, "answer", None)))]
    labelled = sorted(ok, key=lambda q: str(q.id))
    if n > len(labelled):
        what = "a yes/no/maybe label" if polar else "a gold answer"
        raise ValueError(f"asked for {n} questions but only {len(labelled)} have {what}")
    return random.Random(seed).sample(labelled, n)


_CITE = re.compile(r"\[[^\[\]]{1,40}\]")
_SCORER = None


def answer_overlap(answer: str, gold: str) -> float:
    """ROUGE-L F1 of an answer against a free-text gold answer (rouge-score, Porter stemming); the answer's
    'Answer:' prefix and [n] citations are removed first."""
    global _SCORER
    if _SCORER is None:
        from rouge_score import rouge_scorer
        _SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    text = _CITE.sub(" ", re.sub(r"^\s*answer\s*:\s*", "", answer or "", flags=re.IGNORECASE))
    return float(_SCORER.score(gold, text)["rougeL"].fmeasure)


def bootstrap_mean_ci(xs: Sequence[float], *, seed: int = 0, samples: int = 4000) -> list[float] | None:
    """Percentile bootstrap 95 % interval of the mean of `xs` (seeded; None for fewer than 2 values)."""
    if len(xs) < 2:
        return None
    import numpy as np
    rng = np.random.default_rng(seed)
    a = np.asarray(xs, dtype=float)
    means = a[rng.integers(0, len(a), size=(samples, len(a)))].mean(axis=1)
    return [round(float(np.quantile(means, 0.025)), 6), round(float(np.quantile(means, 0.975)), 6)]


def paired_difference(a: Sequence[float], b: Sequence[float], *, seed: int = 0) -> dict:
    """Mean of a - b over pairs, its bootstrap 95 % interval, and the two-sided Wilcoxon signed-rank p-value
    (scipy; None when every difference is 0 or there are fewer than 2 pairs)."""
    d = [x - y for x, y in zip(a, b)]
    if not d:
        return {"n": 0, "mean_change": None, "ci95": None, "p_value": None}
    p = None
    if len(d) >= 2 and any(x != 0 for x in d):
        from scipy.stats import wilcoxon
        p = float(wilcoxon(d, zero_method="zsplit").pvalue)
    return {"n": len(d), "mean_change": sum(d) / len(d), "ci95": bootstrap_mean_ci(d, seed=seed), "p_value": p}


def majority_class(questions: Iterable[Any]) -> tuple[str, float, int]:
    """(label, share, n) of the most common gold answer (ties broken yes > no > maybe)."""
    counts = Counter(q.answer for q in questions if getattr(q, "answer", None) in DECISIONS)
    n = sum(counts.values())
    if not n:
        raise ValueError("no labelled question")
    label = max(DECISIONS, key=lambda d: (counts[d], -DECISIONS.index(d)))
    return label, counts[label] / n, n


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """95 % Wilson score interval of a proportion k/n (None when n == 0)."""
    if n <= 0:
        return None
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact_p(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> float | None:
    """Two-sided exact McNemar test on paired outcomes: p-value that arms a and b are equally accurate.

    Only the discordant pairs count (a right / b wrong and the reverse); None when the lists are empty."""
    if len(a_correct) != len(b_correct):
        raise ValueError("paired outcomes must have the same length")
    if not a_correct:
        return None
    b01 = sum(1 for a, b in zip(a_correct, b_correct) if a and not b)
    b10 = sum(1 for a, b in zip(a_correct, b_correct) if b and not a)
    m = b01 + b10
    if m == 0:
        return 1.0
    k = min(b01, b10)
    tail = sum(math.comb(m, i) for i in range(k + 1)) / 2 ** m
    return min(1.0, 2 * tail)


# -- one question --------------------------------------------------------------------------------------------

@dataclass
class QuestionOutcome:
    """What one run of one question produced, reduced to what quality scoring needs."""
    question_id: str
    gold: str | None                           # yes/no/maybe label, or the free-text gold answer
    decision: str | None
    arm: str                                   # retrieval | closed_book | retrieval_no_early_exit | single_shot
    time_s: float
    tokens_generated: int = 0
    claims: int = 0
    citations: int = 0                         # all citation instances (valid and invalid)
    valid_cited_ids: list[str] = field(default_factory=list)   # one entry per valid citation instance
    gold_ids: list[str] = field(default_factory=list)
    context_ids: list[str] = field(default_factory=list)       # passages that were in context
    early_exit_triggered: bool = False
    success: bool = True
    grounded: int = 0                          # grounded citation instances (claims and answer)
    all_citations: int = 0                     # citation instances of claims and answer sentences
    overlap: float | None = None               # ROUGE-L F1 against a free-text gold answer

    @property
    def correct(self) -> bool:
        return self.decision is not None and self.decision == self.gold

    @property
    def grounded_rate(self) -> float | None:
        return self.grounded / self.all_citations if self.all_citations else None

    @property
    def gold_cited(self) -> int:
        g = set(self.gold_ids)
        return sum(1 for pid in self.valid_cited_ids if pid in g)

    @property
    def citation_precision(self) -> float | None:
        return self.gold_cited / len(self.valid_cited_ids) if self.valid_cited_ids else None

    @property
    def gold_in_context(self) -> bool:
        return bool(set(self.gold_ids) & set(self.context_ids))

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(correct=self.correct, citation_precision=self.citation_precision)
        return d


def outcome_from_session(session: Any, question: Any, arm: str, time_s: float) -> QuestionOutcome:
    """Reduce an engine ResearchSession (duck-typed: .decision, .claims, .telemetry) to a QuestionOutcome."""
    tel = session.telemetry
    m = tel["metrics"]
    valid: list[str] = [pid for c in session.claims for pid in c.valid_sources]
    # The answer's own citations (unique passages it names) count as citation instances too.
    valid += list(tel["answer"].get("sources") or [])
    n_answer = len(tel["answer"].get("sources") or [])
    context = [pid for b in tel["traces"]["batches"] if b.get("admitted") for pid in b["passage_ids"]]
    gold = question.answer
    free_text = gold is not None and gold not in DECISIONS
    return QuestionOutcome(
        question_id=str(question.id), gold=gold, decision=session.decision, arm=arm, time_s=time_s,
        tokens_generated=int(m["tokens_generated"]), claims=int(m["claims"]),
        citations=int(m["citations"]) + n_answer, valid_cited_ids=valid, gold_ids=list(question.gold_passage_ids),
        context_ids=context, early_exit_triggered=bool(tel["early_exit"]["triggered"]),
        success=bool(tel.get("success", True)), grounded=int(m.get("grounded_citations") or 0),
        all_citations=int(m["citations"]) + int(m.get("answer_citations") or 0),
        overlap=answer_overlap(getattr(session, "answer", "") or "", gold) if free_text else None)


# -- one arm -------------------------------------------------------------------------------------------------

def _median(xs: Sequence[float]) -> float | None:
    s = sorted(xs)
    if not s:
        return None
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def summarize_arm(outcomes: Sequence[QuestionOutcome]) -> dict:
    """Accuracy (with its 95 % Wilson interval), citation figures, claims, tokens and time of one arm."""
    n = len(outcomes)
    k = sum(o.correct for o in outcomes)
    cites = sum(o.citations for o in outcomes)
    valid = sum(len(o.valid_cited_ids) for o in outcomes)
    gold_hits = sum(o.gold_cited for o in outcomes)
    ci = wilson_interval(k, n)
    times = [o.time_s for o in outcomes]
    all_cit = sum(o.all_citations for o in outcomes)
    overlaps = [o.overlap for o in outcomes if o.overlap is not None]
    return {
        "n": n,
        "correct": k,
        "accuracy": k / n if n else None,
        "accuracy_ci95": list(ci) if ci else None,
        "decisions": dict(Counter(o.decision or "none" for o in outcomes)),
        "decision_parse_rate": sum(o.decision is not None for o in outcomes) / n if n else None,
        "citations": cites,
        "valid_citations": valid,
        "citation_validity": valid / cites if cites else None,
        "gold_citations": gold_hits,
        "citation_precision": gold_hits / valid if valid else None,
        "gold_recall": sum(o.gold_cited > 0 for o in outcomes) / n if n else None,
        "context_gold_recall": sum(o.gold_in_context for o in outcomes) / n if n else None,
        "claims_per_question": sum(o.claims for o in outcomes) / n if n else None,
        "tokens_per_question": sum(o.tokens_generated for o in outcomes) / n if n else None,
        "time_per_question_s": sum(times) / n if n else None,
        "time_per_question_median_s": _median(times),
        "early_exit_fired": sum(o.early_exit_triggered for o in outcomes),
        "failed_runs": sum(not o.success for o in outcomes),
        "grounded_citations": sum(o.grounded for o in outcomes),
        "grounded_citation_rate": sum(o.grounded for o in outcomes) / all_cit if all_cit else None,
        "grounded_citation_rate_ci95": list(wilson_interval(sum(o.grounded for o in outcomes), all_cit) or []) or None,
        "overlap": sum(overlaps) / len(overlaps) if overlaps else None,
        "overlap_ci95": bootstrap_mean_ci(overlaps),
    }


def majority_arm(sample: Sequence[Any], label: str) -> dict:
    """The majority-class baseline scored on the sample (no model, no time)."""
    n = len(sample)
    k = sum(1 for q in sample if q.answer == label)
    ci = wilson_interval(k, n)
    return {"label": label, "n": n, "correct": k, "accuracy": k / n if n else None,
            "accuracy_ci95": list(ci) if ci else None}


def early_exit_tradeoff(on: Sequence[QuestionOutcome], off: Sequence[QuestionOutcome]) -> dict:
    """Paired by question: tokens and time saved by early exit, and what it cost in accuracy.

    Only questions run in both arms count. Positive `tokens_saved` = early exit generated fewer tokens;
    `accuracy_change` = accuracy(on) - accuracy(off) (negative = early exit lost answers)."""
    off_by = {o.question_id: o for o in off}
    pairs = [(a, off_by[a.question_id]) for a in on if a.question_id in off_by]
    n = len(pairs)
    if not n:
        return {"n": 0, "tokens_on": 0, "tokens_off": 0, "tokens_saved": 0, "tokens_saved_share": None,
                "time_on_s": 0.0, "time_off_s": 0.0, "time_saved_share": None, "accuracy_on": None,
                "accuracy_off": None, "accuracy_change": None, "fired": 0, "changed_answers": 0, "p_value": None,
                "fired_tokens_saved_share": None, "grounded_change": paired_difference([], []),
                "overlap_change": paired_difference([], [])}
    t_on = sum(a.tokens_generated for a, _ in pairs)
    t_off = sum(b.tokens_generated for _, b in pairs)
    s_on = sum(a.time_s for a, _ in pairs)
    s_off = sum(b.time_s for _, b in pairs)
    acc_on = sum(a.correct for a, _ in pairs) / n
    acc_off = sum(b.correct for _, b in pairs) / n
    g = [(a.grounded_rate, b.grounded_rate) for a, b in pairs if a.grounded_rate is not None and b.grounded_rate is not None]
    ov = [(a.overlap, b.overlap) for a, b in pairs if a.overlap is not None and b.overlap is not None]
    return {
        "n": n,
        "tokens_on": t_on, "tokens_off": t_off, "tokens_saved": t_off - t_on,
        "tokens_saved_share": (t_off - t_on) / t_off if t_off else None,
        "time_on_s": s_on, "time_off_s": s_off,
        "time_saved_share": (s_off - s_on) / s_off if s_off else None,
        "accuracy_on": acc_on, "accuracy_off": acc_off, "accuracy_change": acc_on - acc_off,
        "fired": sum(a.early_exit_triggered for a, _ in pairs),
        "changed_answers": sum(a.decision != b.decision for a, b in pairs),
        "p_value": mcnemar_exact_p([a.correct for a, _ in pairs], [b.correct for _, b in pairs]),
        "fired_tokens_saved_share": _share_saved([(a.tokens_generated, b.tokens_generated) for a, b in pairs
                                                  if a.early_exit_triggered]),
        "grounded_change": paired_difference([x for x, _ in g], [y for _, y in g]),
        "overlap_change": paired_difference([x for x, _ in ov], [y for _, y in ov]),
    }


def _share_saved(pairs: list[tuple[int, int]]) -> float | None:
    off = sum(b for _, b in pairs)
    return (off - sum(a for a, _ in pairs)) / off if off else None


def _paired(a: Sequence[QuestionOutcome], b: Sequence[QuestionOutcome], polar: bool = True) -> dict:
    """a vs b on the questions run in both: accuracy change with exact McNemar (polar sets), overlap change with
    Wilcoxon (free-text sets), time per question (a / b)."""
    b_by = {o.question_id: o for o in b}
    pairs = [(x, b_by[x.question_id]) for x in a if x.question_id in b_by]
    if not pairs:
        return {"n": 0, "accuracy_change": None, "p_value": None}
    n = len(pairs)
    out = {"n": n, "accuracy_change": None, "p_value": None}
    if polar:
        out["accuracy_change"] = sum(x.correct for x, _ in pairs) / n - sum(y.correct for _, y in pairs) / n
        out["p_value"] = mcnemar_exact_p([x.correct for x, _ in pairs], [y.correct for _, y in pairs])
    else:
        ov = [(x.overlap, y.overlap) for x, y in pairs if x.overlap is not None and y.overlap is not None]
        d = paired_difference([x for x, _ in ov], [y for _, y in ov])
        out.update(overlap_change=d["mean_change"], overlap_change_ci95=d["ci95"], p_value=d["p_value"])
    ta, tb = sum(x.time_s for x, _ in pairs), sum(y.time_s for _, y in pairs)
    out["time_ratio"] = ta / tb if tb else None
    return out


# -- the whole bench -----------------------------------------------------------------------------------------

def quality_summary(*, profile: str, seed: int, sample: Sequence[Any], all_questions: Sequence[Any],
                    retrieval: Sequence[QuestionOutcome], closed_book: Sequence[QuestionOutcome],
                    no_early_exit: Sequence[QuestionOutcome], single_shot: Sequence[QuestionOutcome] = (),
                    corpus: dict | None = None, model: str | None = None, backend: str | None = None) -> dict:
    """The stored quality summary (schemas/quality.schema.json): arms, baselines, comparisons, and the flat
    `metrics` the report charts and the exports publish. A free-text corpus has no decision accuracy and no
    majority baseline (null); its answers are scored by overlap."""
    polar = is_polar_set(all_questions)
    arms = {"retrieval": summarize_arm(retrieval), "closed_book": summarize_arm(closed_book),
            "retrieval_no_early_exit": summarize_arm(no_early_exit), "single_shot": summarize_arm(single_shot)}
    if not polar:
        for a in arms.values():
            a.update(correct=0, accuracy=None, accuracy_ci95=None, decision_parse_rate=None)
    maj = None
    if polar:
        label, share, n_all = majority_class(all_questions)
        maj = majority_arm(sample, label)
        maj.update(full_set_share=share, full_set_n=n_all)
    ee = early_exit_tradeoff(retrieval, no_early_exit)
    r, cb, ss = arms["retrieval"], arms["closed_book"], arms["single_shot"]

    def diff(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    metrics = {
        "accuracy": r["accuracy"],
        "accuracy_closed_book": cb["accuracy"],
        "accuracy_majority": maj["accuracy"] if maj else None,
        "accuracy_gain_over_majority": diff(r["accuracy"], maj["accuracy"] if maj else None),
        "accuracy_gain_over_closed_book": diff(r["accuracy"], cb["accuracy"]),
        "accuracy_single_shot": ss["accuracy"],
        "overlap": r["overlap"],
        "overlap_single_shot": ss["overlap"],
        "overlap_closed_book": cb["overlap"],
        "decision_parse_rate": r["decision_parse_rate"],
        "citation_validity_sample": r["citation_validity"],
        "grounded_citation_rate_sample": r["grounded_citation_rate"],
        "grounded_citation_rate_single_shot": ss["grounded_citation_rate"],
        "citation_precision": r["citation_precision"],
        "gold_recall": r["gold_recall"],
        "context_gold_recall": r["context_gold_recall"],
        "claims_per_question": r["claims_per_question"],
        "tokens_per_question": r["tokens_per_question"],
        "time_per_question_s": r["time_per_question_s"],
        "time_per_question_closed_book_s": cb["time_per_question_s"],
        "time_per_question_single_shot_s": ss["time_per_question_s"],
        "early_exit_fired_share": (r["early_exit_fired"] / r["n"]) if r["n"] else None,
        "early_exit_tokens_saved_share": ee["tokens_saved_share"],
        "early_exit_time_saved_share": ee["time_saved_share"],
        "early_exit_accuracy_change": ee["accuracy_change"] if polar else None,
        "early_exit_grounded_change": ee["grounded_change"]["mean_change"],
        "early_exit_overlap_change": ee["overlap_change"]["mean_change"],
    }
    bounds = {"accuracy": r["accuracy_ci95"], "accuracy_closed_book": cb["accuracy_ci95"],
              "accuracy_majority": maj["accuracy_ci95"] if maj else None, "accuracy_single_shot": ss["accuracy_ci95"],
              "overlap": r["overlap_ci95"], "overlap_single_shot": ss["overlap_ci95"],
              "overlap_closed_book": cb["overlap_ci95"],
              "grounded_citation_rate_sample": r["grounded_citation_rate_ci95"],
              "grounded_citation_rate_single_shot": ss["grounded_citation_rate_ci95"]}
    comparisons = {"retrieval_vs_closed_book": _paired(retrieval, closed_book, polar),
                   "retrieval_vs_single_shot": _paired(retrieval, single_shot, polar)}
    if maj:
        comparisons["retrieval_vs_majority"] = _paired(retrieval, [
            QuestionOutcome(str(q.id), q.answer, maj["label"], "majority", 0.0) for q in sample])
    return {
        "profile": profile, "seed": seed, "sample_size": len(sample), "answers": "decision" if polar else "free_text",
        "question_ids": [str(q.id) for q in sample],
        "corpus": corpus or {}, "model": model, "backend": backend,
        "majority": maj, "arms": arms, "early_exit": ee,
        "comparisons": comparisons,
        "metrics": metrics,
        "bounds": {k: v for k, v in bounds.items() if v},
        "questions": [o.as_dict() for o in [*retrieval, *closed_book, *no_early_exit, *single_shot]],
    }
