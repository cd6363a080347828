"""A quality bench's summary (analysis/quality.py) as a few terminal lines: what the quality bench prints when it
ends and what the session summary repeats."""
from __future__ import annotations

from ..analysis.quality import Arm, Paired, QualitySummary


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _ci(c: list | None) -> str:
    return f" [95% CI {c[0]:.0%}-{c[1]:.0%}]" if c else ""


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "n/a" if x is None else format(x, fmt)


def _arm(q: QualitySummary, a: Arm, grounded: bool = True) -> str:
    """'accuracy 50.0% (5/10) [95% CI ...], grounded 80.0%, 20.4 s/question' (or ROUGE-L, or 'not run')."""
    if not a.n:
        score = "not run"
    elif q.free_text:
        score = f"ROUGE-L {_num(a.overlap)}{_ci(a.overlap_ci95)}"
    else:
        score = f"accuracy {_pct(a.accuracy)} ({a.correct}/{a.n}){_ci(a.accuracy_ci95)}"
    ground = f", grounded {_pct(a.grounded_citation_rate)}{_ci(a.grounded_citation_rate_ci95)}" if grounded else ""
    secs = "n/a" if a.time_per_question_s is None else f"{a.time_per_question_s:.1f} s"
    return f"{score}{ground}, {secs}/question"


def _change(d: Paired) -> str:
    """A paired change in points: '+2.0 [-1.0, +5.0], p = 0.250'."""
    if d.mean_change is None:
        return "n/a"
    rng = f" [{d.ci95[0] * 100:+.1f}, {d.ci95[1] * 100:+.1f}]" if d.ci95 else ""
    return f"{d.mean_change * 100:+.1f}{rng}{'' if d.p_value is None else f', p = {d.p_value:.3f}'}"


def summary_lines(q: QualitySummary) -> list[str]:
    """The quality summary as a few terminal lines."""
    r, maj, ee = q.arm("retrieval"), q.majority, q.early_exit
    passages = q.corpus.get("passages")
    name = q.corpus.get("name") or ("corpus" if q.free_text else "PubMedQA-L")

    def p_of(comparison: str) -> str:
        return _num(q.p_value(comparison), ".3f")

    lines = [
        f"quality [{q.profile}] {name}, {q.sample_size} questions (seed {q.seed}) over the whole corpus"
        + (f" ({passages:,} passages)" if passages else "") + ":",
        f"  progressive (early exit on): {_arm(q, r)}" + ("" if q.free_text else f"; decisions {r.decisions}"),
        f"  single-shot RAG:             {_arm(q, q.arm('single_shot'))}; progressive vs single-shot p = "
        f"{p_of('retrieval_vs_single_shot')}",
        f"  closed-book:                 {_arm(q, q.arm('closed_book'), grounded=False)}; progressive vs closed-book "
        f"p = {p_of('retrieval_vs_closed_book')}",
    ]
    if not q.free_text:
        lines.append("  decisions against closed-book (right -> wrong / wrong -> right): " + ", ".join(
            f"{name} {c.get('right_to_wrong', 'n/a')} / {c.get('wrong_to_right', 'n/a')}" for name, c in (
                ("progressive", q.comparisons.get("retrieval_vs_closed_book") or {}),
                ("single-shot", q.comparisons.get("single_shot_vs_closed_book") or {}))))
    if maj:
        lines.append(f"  majority '{maj.label}': {_pct(maj.accuracy)} ({maj.correct}/{maj.n}; "
                     f"{maj.full_set_share:.1%} of all {maj.full_set_n}){_ci(maj.accuracy_ci95)}")
    lines.append(f"  citations: validity {_pct(r.citation_validity)}, precision vs gold passages "
                 f"{_pct(r.citation_precision)}, gold cited in {_pct(r.gold_recall)} of questions, gold in "
                 f"context in {_pct(r.context_gold_recall)}; claims/question {_num(q.metrics.get('claims_per_question'))}")
    quality_change = (f"ROUGE-L x100 {_change(ee.overlap_change)}" if q.free_text else
                      f"accuracy {_pct(ee.accuracy_off)} -> {_pct(ee.accuracy_on)} (McNemar p = {_num(ee.p_value, '.3f')})")
    lines.append(f"  early exit on vs off ({ee.n} paired questions, fired in {ee.fired}): generated tokens "
                 f"{ee.tokens_off} -> {ee.tokens_on} (saved {_pct(ee.tokens_saved_share)}), time saved "
                 f"{_pct(ee.time_saved_share)}; {quality_change}; grounded rate points {_change(ee.grounded_change)}")
    return lines
