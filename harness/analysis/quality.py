"""Answer quality, pure: sampling, scoring, baselines, the early-exit trade-off, arms compared paired, and the
typed summary a quality bench stores (schemas/quality.schema.json). Yes/no/maybe answers are scored by accuracy,
free-text ones by ROUGE-L overlap; only the former have a majority-class baseline."""
from __future__ import annotations

import random
import re
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

from .. import records

#: The seed of the question sample; records made with different seeds are not comparable (it is stored).
QUALITY_SEED = 20240527

#: Questions per profile, and how many of them (the first of the same sample) also run with early exit off.
SAMPLE_SIZES: dict[str, tuple[int, int]] = {"quick": (20, 10), "balanced": (40, 20), "thorough": (60, 30)}
DECISIONS = ("yes", "no", "maybe")
#: retrieval: progressive, early exit on (retrieval_no_early_exit: off, on the first questions); single_shot: the top
#: passages that fit, one prompt; closed_book: no retrieval. Opt-in: retrieval_other_claim_mode (the claim mode the
#: profile does not use), retrieval_free (no grammar, a full first batch).
ARMS = ("retrieval", "closed_book", "retrieval_no_early_exit", "single_shot", "retrieval_other_claim_mode",
        "retrieval_free")
#: The arms compared paired, as "<a>_vs_<b>" (and retrieval_vs_majority on a labelled set).
PAIRED = (("retrieval", "closed_book"), ("retrieval", "single_shot"), ("single_shot", "closed_book"),
          ("retrieval_no_early_exit", "closed_book"), ("retrieval", "retrieval_other_claim_mode"),
          ("retrieval", "retrieval_free"))


def _load(cls, d: Mapping | None):
    """A dataclass from its stored dict: unknown keys are left out, missing ones take their defaults."""
    return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in (d or {})})


def _share(k: float, n: float) -> float | None:
    return k / n if n else None


def is_polar_set(questions: Iterable[Any]) -> bool:
    """Whether the questions' gold answers are yes/no/maybe labels (PubMedQA) rather than free text."""
    answers = [getattr(q, "answer", None) for q in questions if getattr(q, "answer", None)]
    return bool(answers) and all(a in DECISIONS for a in answers)


def sample_questions(questions: Iterable[Any], n: int, seed: int = QUALITY_SEED) -> list[Any]:
    """A fixed sample of n answered (in a yes/no/maybe set: labelled) questions, whatever order they were loaded in."""
    qs = list(questions)
    polar = is_polar_set(qs)
    ok = [q for q in qs if (getattr(q, "answer", None) in DECISIONS if polar else getattr(q, "answer", None))]
    labelled = sorted(ok, key=lambda q: str(q.id))
    if n > len(labelled):
        what = "a yes/no/maybe label" if polar else "a gold answer"
        raise ValueError(f"asked for {n} questions but only {len(labelled)} have {what}")
    return random.Random(seed).sample(labelled, n)


_CITE = re.compile(r"\[[^\[\]]{1,40}\]")


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def answer_overlap(answer: str, gold: str) -> float:
    """ROUGE-L F1 (Porter stemming) of an answer without its 'Answer:' prefix and [n] citations against the gold."""
    text = _CITE.sub(" ", re.sub(r"^\s*answer\s*:\s*", "", answer or "", flags=re.IGNORECASE))
    return float(_scorer().score(gold, text)["rougeL"].fmeasure)


def bootstrap_mean_ci(xs: Sequence[float], *, seed: int = 0, samples: int = 4000) -> list[float] | None:
    """Percentile bootstrap 95 % interval of the mean of `xs` (seeded; None for fewer than 2 values)."""
    if len(xs) < 2:
        return None
    import numpy as np
    a = np.asarray(xs, dtype=float)
    means = a[np.random.default_rng(seed).integers(0, len(a), size=(samples, len(a)))].mean(axis=1)
    return [round(float(np.quantile(means, 0.025)), 6), round(float(np.quantile(means, 0.975)), 6)]


@dataclass
class Paired:
    """Per-question a - b over pairs: the mean change, its bootstrap 95 % interval, the Wilcoxon p-value."""
    n: int = 0
    mean_change: float | None = None
    ci95: list[float] | None = None
    p_value: float | None = None


def paired_difference(a: Sequence[float], b: Sequence[float], *, seed: int = 0) -> Paired:
    """Paired (the Wilcoxon p None when every difference is 0 or there are fewer than 2 pairs)."""
    from scipy.stats import wilcoxon
    d = [x - y for x, y in zip(a, b)]
    if not d:
        return Paired()
    p = float(wilcoxon(d, zero_method="zsplit").pvalue) if len(d) >= 2 and any(d) else None
    return Paired(len(d), sum(d) / len(d), bootstrap_mean_ci(d, seed=seed), p)


def majority_class(questions: Iterable[Any]) -> tuple[str, float, int]:
    """(label, share, n) of the most common gold answer (ties broken yes > no > maybe)."""
    counts = Counter(q.answer for q in questions if getattr(q, "answer", None) in DECISIONS)
    n = sum(counts.values())
    if not n:
        raise ValueError("no labelled question")
    label = max(DECISIONS, key=lambda d: (counts[d], -DECISIONS.index(d)))
    return label, counts[label] / n, n


def wilson_interval(k: int, n: int) -> list[float] | None:
    """95 % Wilson score interval of a proportion k/n (None when n == 0)."""
    if n <= 0:
        return None
    from scipy.stats import binomtest
    ci = binomtest(k, n).proportion_ci(method="wilson")
    return [float(ci.low), float(ci.high)]


def mcnemar_exact_p(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> float | None:
    """Two-sided exact McNemar p that arms a and b, paired, are equally accurate (None for no pairs)."""
    if not a_correct:
        return None
    pairs = list(zip(a_correct, b_correct, strict=True))
    a_only, m = sum(a and not b for a, b in pairs), sum(a != b for a, b in pairs)
    from scipy.stats import binomtest
    return min(1.0, float(binomtest(min(a_only, m - a_only), m, 0.5).pvalue)) if m else 1.0


def flips(base_correct: Sequence[bool], correct: Sequence[bool]) -> tuple[int, int]:
    """(right -> wrong, wrong -> right) going from the base arm to this one, paired by position."""
    return (sum(1 for b, c in zip(base_correct, correct) if b and not c),
            sum(1 for b, c in zip(base_correct, correct) if c and not b))


@dataclass
class QuestionOutcome:
    """What one run of one question produced, reduced to what quality scoring needs."""
    question_id: str
    gold: str | None                           # yes/no/maybe label, or the free-text gold answer
    decision: str | None
    arm: str                                   # one of ARMS
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
        return _share(self.grounded, self.all_citations)

    @property
    def gold_cited(self) -> int:
        return sum(1 for pid in self.valid_cited_ids if pid in self.gold_ids)

    @property
    def citation_precision(self) -> float | None:
        return _share(self.gold_cited, len(self.valid_cited_ids))

    @property
    def gold_in_context(self) -> bool:
        return bool(set(self.gold_ids) & set(self.context_ids))

    def as_dict(self) -> dict:
        return {**asdict(self), "correct": self.correct, "citation_precision": self.citation_precision}


def outcome_from_session(session: Any, question: Any, arm: str, time_s: float) -> QuestionOutcome:
    """An engine ResearchSession reduced to its outcome; the passages the answer names count as citations too."""
    tel, gold = session.telemetry, question.answer
    m, answer_sources = tel["metrics"], list(tel["answer"].get("sources") or [])
    return QuestionOutcome(
        question_id=str(question.id), gold=gold, decision=session.decision, arm=arm, time_s=time_s,
        tokens_generated=int(m["tokens_generated"]), claims=int(m["claims"]),
        citations=int(m["citations"]) + len(answer_sources),
        valid_cited_ids=[pid for c in session.claims for pid in c.valid_sources] + answer_sources,
        gold_ids=list(question.gold_passage_ids),
        context_ids=[pid for b in tel["traces"]["batches"] if b.get("admitted") for pid in b["passage_ids"]],
        early_exit_triggered=bool(tel["early_exit"]["triggered"]), success=bool(tel.get("success", True)),
        grounded=int(m.get("grounded_citations") or 0),
        all_citations=int(m["citations"]) + int(m.get("answer_citations") or 0),
        overlap=(answer_overlap(getattr(session, "answer", "") or "", gold)
                 if gold is not None and gold not in DECISIONS else None))


@dataclass
class Arm:
    """One arm's figures over its questions (the schema's $defs/arm)."""
    n: int = 0
    correct: int = 0
    accuracy: float | None = None
    accuracy_ci95: list[float] | None = None
    decisions: dict[str, int] = field(default_factory=dict)
    decision_parse_rate: float | None = None
    citations: int = 0
    valid_citations: int = 0
    citation_validity: float | None = None
    gold_citations: int = 0
    citation_precision: float | None = None
    gold_recall: float | None = None
    context_gold_recall: float | None = None
    claims_per_question: float | None = None
    tokens_per_question: float | None = None
    time_per_question_s: float | None = None
    time_per_question_median_s: float | None = None
    early_exit_fired: int = 0
    failed_runs: int = 0
    grounded_citations: int = 0
    grounded_citation_rate: float | None = None
    grounded_citation_rate_ci95: list[float] | None = None
    overlap: float | None = None
    overlap_ci95: list[float] | None = None


def summarize_arm(outcomes: Sequence[QuestionOutcome]) -> Arm:
    n, k = len(outcomes), sum(o.correct for o in outcomes)
    cites, valid = sum(o.citations for o in outcomes), sum(len(o.valid_cited_ids) for o in outcomes)
    gold_hits = sum(o.gold_cited for o in outcomes)
    grounded, all_cit = sum(o.grounded for o in outcomes), sum(o.all_citations for o in outcomes)
    times = [o.time_s for o in outcomes]
    overlaps = [o.overlap for o in outcomes if o.overlap is not None]
    return Arm(
        n=n, correct=k, accuracy=_share(k, n), accuracy_ci95=wilson_interval(k, n),
        decisions=dict(Counter(o.decision or "none" for o in outcomes)),
        decision_parse_rate=_share(sum(o.decision is not None for o in outcomes), n),
        citations=cites, valid_citations=valid, citation_validity=_share(valid, cites),
        gold_citations=gold_hits, citation_precision=_share(gold_hits, valid),
        gold_recall=_share(sum(o.gold_cited > 0 for o in outcomes), n),
        context_gold_recall=_share(sum(o.gold_in_context for o in outcomes), n),
        claims_per_question=_share(sum(o.claims for o in outcomes), n),
        tokens_per_question=_share(sum(o.tokens_generated for o in outcomes), n),
        time_per_question_s=_share(sum(times), n),
        time_per_question_median_s=statistics.median(times) if times else None,
        early_exit_fired=sum(o.early_exit_triggered for o in outcomes),
        failed_runs=sum(not o.success for o in outcomes),
        grounded_citations=grounded, grounded_citation_rate=_share(grounded, all_cit),
        grounded_citation_rate_ci95=wilson_interval(grounded, all_cit),
        overlap=_share(sum(overlaps), len(overlaps)), overlap_ci95=bootstrap_mean_ci(overlaps))


@dataclass
class Majority:
    """The majority-class baseline: always answer `label`, scored on the sample (no model, no time)."""
    label: str
    n: int
    correct: int
    accuracy: float | None
    accuracy_ci95: list[float] | None
    full_set_share: float = 0.0                # the label's share of every labelled question of the corpus
    full_set_n: int = 0


def _pairs(a: Sequence[QuestionOutcome], b: Sequence[QuestionOutcome]) -> list[tuple[QuestionOutcome, QuestionOutcome]]:
    """The outcomes of a and b on the questions run in both, paired."""
    b_by = {o.question_id: o for o in b}
    return [(x, b_by[x.question_id]) for x in a if x.question_id in b_by]


def _paired_change(pairs: list, attr: str) -> Paired:
    """Paired difference of a per-question number (`overlap`, `grounded_rate`) where both sides have it."""
    both = [(a, b) for x, y in pairs if None not in (a := getattr(x, attr), b := getattr(y, attr))]
    return paired_difference(*zip(*both)) if both else Paired()


def _accuracy_change(pairs: list) -> tuple[float, float | None]:
    """Accuracy of a - of b over pairs (a, b), and the exact McNemar p."""
    a, b = [x.correct for x, _ in pairs], [y.correct for _, y in pairs]
    return sum(a) / len(pairs) - sum(b) / len(pairs), mcnemar_exact_p(a, b)


@dataclass
class EarlyExit:
    """Early exit on vs off, paired by question: what it saved (off - on) and cost (accuracy on - off)."""
    n: int = 0
    tokens_on: int = 0
    tokens_off: int = 0
    tokens_saved: int = 0
    tokens_saved_share: float | None = None
    time_on_s: float = 0.0
    time_off_s: float = 0.0
    time_saved_share: float | None = None
    accuracy_on: float | None = None
    accuracy_off: float | None = None
    accuracy_change: float | None = None
    fired: int = 0
    changed_answers: int = 0
    p_value: float | None = None               # exact McNemar on the decisions
    fired_tokens_saved_share: float | None = None   # tokens saved on the questions where the gate fired
    grounded_change: Paired = field(default_factory=Paired)
    overlap_change: Paired = field(default_factory=Paired)


def early_exit_tradeoff(on: Sequence[QuestionOutcome], off: Sequence[QuestionOutcome]) -> EarlyExit:
    """The early-exit trade-off over the questions run in both arms."""
    pairs = _pairs(on, off)
    if not pairs:
        return EarlyExit()
    n = len(pairs)
    t_on, t_off = sum(a.tokens_generated for a, _ in pairs), sum(b.tokens_generated for _, b in pairs)
    s_on, s_off = sum(a.time_s for a, _ in pairs), sum(b.time_s for _, b in pairs)
    change, p = _accuracy_change(pairs)
    fired = [(a.tokens_generated, b.tokens_generated) for a, b in pairs if a.early_exit_triggered]
    fired_off = sum(b for _, b in fired)
    return EarlyExit(
        n=n, tokens_on=t_on, tokens_off=t_off, tokens_saved=t_off - t_on,
        tokens_saved_share=_share(t_off - t_on, t_off),
        time_on_s=s_on, time_off_s=s_off, time_saved_share=_share(s_off - s_on, s_off),
        accuracy_on=sum(a.correct for a, _ in pairs) / n, accuracy_off=sum(b.correct for _, b in pairs) / n,
        accuracy_change=change, fired=len(fired), changed_answers=sum(a.decision != b.decision for a, b in pairs),
        p_value=p,
        fired_tokens_saved_share=_share(fired_off - sum(a for a, _ in fired), fired_off),
        grounded_change=_paired_change(pairs, "grounded_rate"), overlap_change=_paired_change(pairs, "overlap"))


def _paired(a: Sequence[QuestionOutcome], b: Sequence[QuestionOutcome], polar: bool = True) -> dict:
    """a vs b paired: the accuracy change (McNemar) and flips b -> a, or the overlap change (Wilcoxon); time a / b."""
    pairs = _pairs(a, b)
    out = {"n": len(pairs), "accuracy_change": None, "p_value": None}
    if not pairs:
        return out
    if polar:
        out["accuracy_change"], out["p_value"] = _accuracy_change(pairs)
        out["right_to_wrong"], out["wrong_to_right"] = flips([y.correct for _, y in pairs], [x.correct for x, _ in pairs])
    else:
        d = _paired_change(pairs, "overlap")
        out.update(overlap_change=d.mean_change, overlap_change_ci95=d.ci95, p_value=d.p_value)
    out["time_ratio"] = _share(sum(x.time_s for x, _ in pairs), sum(y.time_s for _, y in pairs))
    return out


@dataclass
class QualitySummary:
    """A quality bench's summary (schemas/quality.schema.json); `metrics`: what the report charts and exports show."""
    profile: str
    seed: int
    sample_size: int
    answers: str                               # "decision" (yes/no/maybe gold labels) or "free_text"
    question_ids: list[str]
    corpus: dict
    model: str | None
    backend: str | None
    majority: Majority | None                  # None for a free-text corpus
    arms: dict[str, Arm]
    early_exit: EarlyExit
    comparisons: dict[str, dict]               # "<arm>_vs_<arm>" (PAIRED, retrieval_vs_majority) -> _paired's
    metrics: dict[str, float | None]
    bounds: dict[str, list[float]]             # metric -> its 95 % interval
    questions: list[dict] = field(default_factory=list)
    runs: dict | None = None                   # the bench's own log: failures, load, sample sizes

    @property
    def free_text(self) -> bool:
        return self.answers == "free_text"

    def arm(self, name: str) -> Arm:
        return self.arms.get(name) or Arm()

    def score(self, arm: Arm) -> tuple[float | None, list[float] | None]:
        """An arm's score and its 95 % interval: ROUGE-L for free-text answers, else accuracy."""
        return (arm.overlap, arm.overlap_ci95) if self.free_text else (arm.accuracy, arm.accuracy_ci95)

    def p_value(self, comparison: str) -> float | None:
        return (self.comparisons.get(comparison) or {}).get("p_value")

    def as_dict(self) -> dict:
        d = asdict(self)
        if self.runs is None:
            del d["runs"]
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> QualitySummary:
        ee = dict(d.get("early_exit") or {})
        ee.update({k: _load(Paired, ee.get(k)) for k in ("grounded_change", "overlap_change")})
        return _load(cls, {**d, "answers": d.get("answers") or "decision", "model": d.get("model"),
                           "backend": d.get("backend"), "corpus": d.get("corpus") or {},
                           "majority": _load(Majority, d["majority"]) if d.get("majority") else None,
                           "arms": {k: _load(Arm, a) for k, a in (d.get("arms") or {}).items() if a},
                           "early_exit": _load(EarlyExit, ee), "comparisons": d.get("comparisons") or {},
                           "bounds": d.get("bounds") or {}})

    @classmethod
    def of_record(cls, record: Any) -> QualitySummary | None:
        """The quality summary a stored record carries (extra['quality'], the schema's required keys), or None."""
        q = (record.extra or {}).get("quality")
        required = records.schema("quality")["required"]
        return cls.from_dict(q) if isinstance(q, Mapping) and set(required) <= q.keys() else None


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _metrics(arms: Mapping[str, Arm], maj: Majority | None, ee: EarlyExit, polar: bool) -> dict[str, float | None]:
    r, cb, ss = arms["retrieval"], arms["closed_book"], arms["single_shot"]
    acc_maj = maj.accuracy if maj else None
    return {
        "accuracy": r.accuracy, "accuracy_closed_book": cb.accuracy, "accuracy_majority": acc_maj,
        "accuracy_gain_over_majority": _diff(r.accuracy, acc_maj),
        "accuracy_gain_over_closed_book": _diff(r.accuracy, cb.accuracy), "accuracy_single_shot": ss.accuracy,
        "overlap": r.overlap, "overlap_single_shot": ss.overlap, "overlap_closed_book": cb.overlap,
        "decision_parse_rate": r.decision_parse_rate, "citation_validity_sample": r.citation_validity,
        "grounded_citation_rate_sample": r.grounded_citation_rate,
        "grounded_citation_rate_single_shot": ss.grounded_citation_rate,
        "citation_precision": r.citation_precision, "gold_recall": r.gold_recall,
        "context_gold_recall": r.context_gold_recall, "claims_per_question": r.claims_per_question,
        "tokens_per_question": r.tokens_per_question, "time_per_question_s": r.time_per_question_s,
        "time_per_question_closed_book_s": cb.time_per_question_s,
        "time_per_question_single_shot_s": ss.time_per_question_s,
        "early_exit_fired_share": _share(r.early_exit_fired, r.n),
        "early_exit_tokens_saved_share": ee.tokens_saved_share, "early_exit_time_saved_share": ee.time_saved_share,
        "early_exit_accuracy_change": ee.accuracy_change if polar else None,
        "early_exit_grounded_change": ee.grounded_change.mean_change,
        "early_exit_overlap_change": ee.overlap_change.mean_change,
    }


def _bounds(arms: Mapping[str, Arm], maj: Majority | None) -> dict[str, list[float]]:
    r, cb, ss = arms["retrieval"], arms["closed_book"], arms["single_shot"]
    bounds = {"accuracy": r.accuracy_ci95, "accuracy_closed_book": cb.accuracy_ci95,
              "accuracy_majority": maj.accuracy_ci95 if maj else None, "accuracy_single_shot": ss.accuracy_ci95,
              "overlap": r.overlap_ci95, "overlap_single_shot": ss.overlap_ci95, "overlap_closed_book": cb.overlap_ci95,
              "grounded_citation_rate_sample": r.grounded_citation_rate_ci95,
              "grounded_citation_rate_single_shot": ss.grounded_citation_rate_ci95}
    return {k: v for k, v in bounds.items() if v}


def quality_summary(outcomes: Mapping[str, Sequence[QuestionOutcome]], *, sample: Sequence[Any],
                    all_questions: Sequence[Any], profile: str, seed: int, corpus: dict | None = None,
                    model: str | None = None, backend: str | None = None) -> QualitySummary:
    """One quality bench's summary from its outcomes per arm (a missing arm: not run)."""
    polar = is_polar_set(all_questions)
    runs = {a: list(outcomes.get(a) or ()) for a in ARMS}
    arms = {a: summarize_arm(runs[a]) for a in ARMS}
    if not polar:
        arms = {a: replace(s, correct=0, accuracy=None, accuracy_ci95=None, decision_parse_rate=None)
                for a, s in arms.items()}
    maj = None
    comparisons = {f"{a}_vs_{b}": _paired(runs[a], runs[b], polar) for a, b in PAIRED}
    if polar:
        label, share, n_all = majority_class(all_questions)
        k = sum(1 for q in sample if q.answer == label)
        maj = Majority(label, len(sample), k, _share(k, len(sample)), wilson_interval(k, len(sample)), share, n_all)
        comparisons["retrieval_vs_majority"] = _paired(runs["retrieval"], [
            QuestionOutcome(str(q.id), q.answer, label, "majority", 0.0) for q in sample])
    ee = early_exit_tradeoff(runs["retrieval"], runs["retrieval_no_early_exit"])
    return QualitySummary(
        profile=profile, seed=seed, sample_size=len(sample), answers="decision" if polar else "free_text",
        question_ids=[str(q.id) for q in sample], corpus=corpus or {}, model=model, backend=backend,
        majority=maj, arms=arms, early_exit=ee, comparisons=comparisons, metrics=_metrics(arms, maj, ee, polar),
        bounds=_bounds(arms, maj), questions=[o.as_dict() for a in ARMS for o in runs[a]])
