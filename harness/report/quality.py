"""A quality bench's summary (analysis/quality.py, schemas/quality.schema.json) as a few terminal lines: what the
quality bench prints when it ends and what the session summary repeats."""
from __future__ import annotations


def summary_lines(q: dict) -> list[str]:
    """The quality summary as a few terminal lines (the bench prints them; the plugin's summary may too)."""
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.1%}"

    def ci(a: dict) -> str:
        c = a.get("accuracy_ci95")
        return f" [95% CI {c[0]:.0%}-{c[1]:.0%}]" if c else ""

    arms, maj, ee, m = q["arms"], q["majority"], q["early_exit"], q["metrics"]
    r, cb = arms["retrieval"], arms["closed_book"]
    p = ((q.get("comparisons") or {}).get("retrieval_vs_closed_book") or {}).get("p_value")
    p_txt = "n/a" if p is None else f"{p:.3f}"
    change = "n/a" if ee["accuracy_change"] is None else f"{ee['accuracy_change'] * 100:+.1f} points"
    claims = "n/a" if m["claims_per_question"] is None else f"{m['claims_per_question']:.2f}"
    passages = (q.get("corpus") or {}).get("passages")
    times = (f"  time/question {r['time_per_question_s']:.1f} s (closed-book {cb['time_per_question_s']:.1f} s)"
             if r["time_per_question_s"] is not None and cb["time_per_question_s"] is not None
             else "  time/question n/a")
    return [
        f"quality [{q['profile']}] PubMedQA-L, {q['sample_size']} questions (seed {q['seed']}) over the whole corpus"
        + (f" ({passages:,} passages)" if passages else "") + ":",
        f"  accuracy (retrieval, early exit on) {pct(r['accuracy'])} ({r['correct']}/{r['n']}){ci(r)}; "
        f"decisions {r.get('decisions')}",
        f"  baselines: majority '{maj['label']}' {pct(maj['accuracy'])} ({maj['correct']}/{maj['n']}; "
        f"{maj['full_set_share']:.1%} of all {maj['full_set_n']}), closed-book {pct(cb['accuracy'])} "
        f"({cb['correct']}/{cb['n']}){ci(cb)}; retrieval vs closed-book exact McNemar p = {p_txt}",
        f"  citations: validity {pct(r['citation_validity'])}, precision vs gold abstract "
        f"{pct(r['citation_precision'])}, gold cited in {pct(r['gold_recall'])} of questions, gold in context in "
        f"{pct(r['context_gold_recall'])}; claims/question {claims}",
        times,
        f"  early exit on vs off ({ee['n']} paired questions, fired in {ee['fired']}): generated tokens "
        f"{ee['tokens_off']} -> {ee['tokens_on']} (saved {pct(ee['tokens_saved_share'])}), time saved "
        f"{pct(ee.get('time_saved_share'))}, accuracy {pct(ee['accuracy_off'])} -> {pct(ee['accuracy_on'])} "
        f"(change {change})",
    ]
