"""Answer quality on PubMedQA-L: pure logic (sampling, scoring, baselines, the early-exit trade-off).

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
"""
from __future__ import annotations

import math
import random
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
#: SmolLM2-135M takes ~20 s, a closed-book run ~2 s, so 20 x 20 s + 10 x 20 s + 20 x 2 s ~ 11 min.
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

def sample_questions(questions: Iterable[Any], n: int, seed: int = QUALITY_SEED) -> list[Any]:
    """A fixed sample of n labelled questions: the same n for the same seed and question set, whatever the
    order the questions were loaded in (sorted by id first). Unlabelled questions are never drawn."""
    labelled = sorted((q for q in questions if getattr(q, "answer", None) in DECISIONS), key=lambda q: str(q.id))
    if n > len(labelled):
        raise ValueError(f"asked for {n} questions but only {len(labelled)} have a yes/no/maybe label")
    return random.Random(seed).sample(labelled, n)


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
    gold: str
    decision: str | None
    arm: str                                   # retrieval | closed_book | retrieval_no_early_exit
    time_s: float
    tokens_generated: int = 0
    claims: int = 0
    citations: int = 0                         # all citation instances (valid and invalid)
    valid_cited_ids: list[str] = field(default_factory=list)   # one entry per valid citation instance
    gold_ids: list[str] = field(default_factory=list)
    context_ids: list[str] = field(default_factory=list)       # passages that were in context
    early_exit_triggered: bool = False
    success: bool = True

    @property
    def correct(self) -> bool:
        return self.decision is not None and self.decision == self.gold

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
    return QuestionOutcome(
        question_id=str(question.id), gold=question.answer, decision=session.decision, arm=arm, time_s=time_s,
        tokens_generated=int(m["tokens_generated"]), claims=int(m["claims"]),
        citations=int(m["citations"]) + n_answer, valid_cited_ids=valid, gold_ids=list(question.gold_passage_ids),
        context_ids=context, early_exit_triggered=bool(tel["early_exit"]["triggered"]),
        success=bool(tel.get("success", True)))


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
                "accuracy_off": None, "accuracy_change": None, "fired": 0, "changed_answers": 0, "p_value": None}
    t_on = sum(a.tokens_generated for a, _ in pairs)
    t_off = sum(b.tokens_generated for _, b in pairs)
    s_on = sum(a.time_s for a, _ in pairs)
    s_off = sum(b.time_s for _, b in pairs)
    acc_on = sum(a.correct for a, _ in pairs) / n
    acc_off = sum(b.correct for _, b in pairs) / n
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
    }


def _paired(a: Sequence[QuestionOutcome], b: Sequence[QuestionOutcome]) -> dict:
    b_by = {o.question_id: o for o in b}
    pairs = [(x, b_by[x.question_id]) for x in a if x.question_id in b_by]
    if not pairs:
        return {"n": 0, "accuracy_change": None, "p_value": None}
    n = len(pairs)
    return {"n": n,
            "accuracy_change": sum(x.correct for x, _ in pairs) / n - sum(y.correct for _, y in pairs) / n,
            "p_value": mcnemar_exact_p([x.correct for x, _ in pairs], [y.correct for _, y in pairs])}


# -- the whole bench -----------------------------------------------------------------------------------------

def quality_summary(*, profile: str, seed: int, sample: Sequence[Any], all_questions: Sequence[Any],
                    retrieval: Sequence[QuestionOutcome], closed_book: Sequence[QuestionOutcome],
                    no_early_exit: Sequence[QuestionOutcome], corpus: dict | None = None,
                    model: str | None = None, backend: str | None = None) -> dict:
    """The stored quality summary (schemas/quality.schema.json): arms, baselines, comparisons, and the flat
    `metrics` the report charts and the exports publish."""
    label, share, n_all = majority_class(all_questions)
    arms = {"retrieval": summarize_arm(retrieval), "closed_book": summarize_arm(closed_book),
            "retrieval_no_early_exit": summarize_arm(no_early_exit)}
    maj = majority_arm(sample, label)
    maj.update(full_set_share=share, full_set_n=n_all)
    ee = early_exit_tradeoff(retrieval, no_early_exit)
    r, cb = arms["retrieval"], arms["closed_book"]

    def diff(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    metrics = {
        "accuracy": r["accuracy"],
        "accuracy_closed_book": cb["accuracy"],
        "accuracy_majority": maj["accuracy"],
        "accuracy_gain_over_majority": diff(r["accuracy"], maj["accuracy"]),
        "accuracy_gain_over_closed_book": diff(r["accuracy"], cb["accuracy"]),
        "decision_parse_rate": r["decision_parse_rate"],
        "citation_validity_sample": r["citation_validity"],
        "citation_precision": r["citation_precision"],
        "gold_recall": r["gold_recall"],
        "context_gold_recall": r["context_gold_recall"],
        "claims_per_question": r["claims_per_question"],
        "tokens_per_question": r["tokens_per_question"],
        "time_per_question_s": r["time_per_question_s"],
        "time_per_question_closed_book_s": cb["time_per_question_s"],
        "early_exit_fired_share": (r["early_exit_fired"] / r["n"]) if r["n"] else None,
        "early_exit_tokens_saved_share": ee["tokens_saved_share"],
        "early_exit_time_saved_share": ee["time_saved_share"],
        "early_exit_accuracy_change": ee["accuracy_change"],
    }
    bounds = {"accuracy": r["accuracy_ci95"], "accuracy_closed_book": cb["accuracy_ci95"],
              "accuracy_majority": maj["accuracy_ci95"]}
    return {
        "profile": profile, "seed": seed, "sample_size": len(sample),
        "question_ids": [str(q.id) for q in sample],
        "corpus": corpus or {}, "model": model, "backend": backend,
        "majority": maj, "arms": arms, "early_exit": ee,
        "comparisons": {"retrieval_vs_closed_book": _paired(retrieval, closed_book),
                        "retrieval_vs_majority": _paired(retrieval, [
                            QuestionOutcome(str(q.id), q.answer, label, "majority", 0.0) for q in sample])},
        "metrics": metrics,
        "bounds": {k: v for k, v in bounds.items() if v},
        "questions": [o.as_dict() for o in [*retrieval, *closed_book, *no_early_exit]],
    }
