"""A quality bench's summary (analysis/quality.py, schemas/quality.schema.json) as a few terminal lines: what the
quality bench prints when it ends and what the session summary repeats."""
from __future__ import annotations


def summary_lines(q: dict) -> list[str]:
    """The quality summary as a few terminal lines (the bench prints them; the plugin's summary may too)."""
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.1%}"

    def ci(c: list | None) -> str:
        return f" [95% CI {c[0]:.0%}-{c[1]:.0%}]" if c else ""

    def num(x: float | None, fmt: str = ".2f") -> str:
        return "n/a" if x is None else format(x, fmt)

    def secs(a: dict) -> str:
        return "n/a" if a.get("time_per_question_s") is None else f"{a['time_per_question_s']:.1f} s"

    arms, maj, ee, m = q["arms"], q.get("majority"), q["early_exit"], q["metrics"]
    r, cb = arms["retrieval"], arms["closed_book"]
    ss = arms.get("single_shot") or {}
    free = q.get("answers") == "free_text"
    corpus = q.get("corpus") or {}
    passages = corpus.get("passages")
    name = corpus.get("name") or ("PubMedQA-L" if not free else "corpus")
    comp = q.get("comparisons") or {}

    def p_of(key: str) -> str:
        p = (comp.get(key) or {}).get("p_value")
        return "n/a" if p is None else f"{p:.3f}"

    def score(a: dict) -> str:
        if not a or not a.get("n"):
            return "not run"
        if free:
            return f"ROUGE-L {num(a.get('overlap'))}{ci(a.get('overlap_ci95'))}"
        return f"accuracy {pct(a['accuracy'])} ({a['correct']}/{a['n']}){ci(a.get('accuracy_ci95'))}"

    def grounded(a: dict) -> str:
        return f"grounded {pct(a.get('grounded_citation_rate'))}{ci(a.get('grounded_citation_rate_ci95'))}"

    lines = [
        f"quality [{q['profile']}] {name}, {q['sample_size']} questions (seed {q['seed']}) over the whole corpus"
        + (f" ({passages:,} passages)" if passages else "") + ":",
        f"  progressive (early exit on): {score(r)}, {grounded(r)}, {secs(r)}/question"
        + ("" if free else f"; decisions {r.get('decisions')}"),
        f"  single-shot RAG:             {score(ss)}, {grounded(ss)}, {secs(ss)}/question; progressive vs "
        f"single-shot p = {p_of('retrieval_vs_single_shot')}",
        f"  closed-book:                 {score(cb)}, {secs(cb)}/question; progressive vs closed-book "
        f"p = {p_of('retrieval_vs_closed_book')}",
    ]
    if maj:
        lines.append(f"  majority '{maj['label']}': {pct(maj['accuracy'])} ({maj['correct']}/{maj['n']}; "
                     f"{maj['full_set_share']:.1%} of all {maj['full_set_n']}){ci(maj.get('accuracy_ci95'))}")
    claims = "n/a" if m["claims_per_question"] is None else f"{m['claims_per_question']:.2f}"
    lines.append(f"  citations: validity {pct(r['citation_validity'])}, precision vs gold passages "
                 f"{pct(r['citation_precision'])}, gold cited in {pct(r['gold_recall'])} of questions, gold in "
                 f"context in {pct(r['context_gold_recall'])}; claims/question {claims}")
    gc, oc = ee.get("grounded_change") or {}, ee.get("overlap_change") or {}

    def change(d: dict, points: bool = True) -> str:
        if d.get("mean_change") is None:
            return "n/a"
        scale = 100 if points else 1
        c = d.get("ci95")
        rng = f" [{c[0] * scale:+.1f}, {c[1] * scale:+.1f}]" if c else ""
        p = d.get("p_value")
        return f"{d['mean_change'] * scale:+.1f}{rng}{'' if p is None else f', p = {p:.3f}'}"

    quality_change = (f"ROUGE-L x100 {change(oc)}" if free else
                      f"accuracy {pct(ee['accuracy_off'])} -> {pct(ee['accuracy_on'])} (McNemar p = "
                      f"{num(ee.get('p_value'), '.3f')})")
    lines.append(f"  early exit on vs off ({ee['n']} paired questions, fired in {ee['fired']}): generated tokens "
                 f"{ee['tokens_off']} -> {ee['tokens_on']} (saved {pct(ee['tokens_saved_share'])}), time saved "
                 f"{pct(ee.get('time_saved_share'))}; {quality_change}; grounded rate points {change(gc)}")
    return lines
