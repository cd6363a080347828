"""The decision bench's summary (analysis/decisions.py) as terminal lines: one line per arm and calibration method,
then the confusion matrices of the arms the issue names."""
from __future__ import annotations

from ..analysis.decisions import ArmFigures, DecisionSummary

#: The arms shown first, in this order (the others follow).
MAIN_ARMS = ("closed_book:raw", "progressive:raw", "progressive:content_free", "progressive:relative",
             "single_shot:content_free", "single_shot:relative")


def _p(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def arm_line(name: str, a: ArmFigures) -> str:
    """'progressive:content_free  n 200  acc 55.0% [48-62]  F1 0.41  R->W 20 W->R 15  p(cb) 0.5 ...'."""
    acc = "n/a" if a.accuracy is None else f"{a.accuracy:.1%}"
    ci = f" [{a.accuracy_ci95[0]:.1%}-{a.accuracy_ci95[1]:.1%}]" if a.accuracy_ci95 else ""
    f1 = "n/a" if a.macro_f1 is None else f"{a.macro_f1:.3f}"
    t = "n/a" if a.time_per_question_s is None else f"{a.time_per_question_s:.1f} s"
    same = ("" if a.closed_book_accuracy is None or a.majority_accuracy is None else
            f" (same questions: closed-book {a.closed_book_accuracy:.1%}, majority {a.majority_accuracy:.1%})")
    return (f"  {name:<28} n {a.n:>3}  accuracy {acc}{ci}{same}  macro-F1 {f1}  right->wrong {a.right_to_wrong:>3}  "
            f"wrong->right {a.wrong_to_right:>3}  McNemar p vs closed-book {_p(a.p_vs_closed_book)}, vs majority "
            f"{_p(a.p_vs_majority)}  {t}/question" + (f"  ({a.failed_runs} runs failed: left out)" if a.failed_runs else ""))


def confusion_lines(name: str, a: ArmFigures) -> list[str]:
    rows = [f"    gold {g:<5}: " + "  ".join(f"{d} {c}" for d, c in row.items()) for g, row in a.confusion.items()]
    return [f"  confusion {name} (gold -> decided):", *rows]


def summary_lines(s: DecisionSummary) -> list[str]:
    order = [a for a in MAIN_ARMS if a in s.arms] + sorted(a for a in s.arms if a not in MAIN_ARMS)
    lines = [f"decisions: {s.n} PubMedQA-L questions paired with closed-book ({s.sample}); majority "
             f"'{s.majority_label}':", arm_line(f"majority:{s.majority_label}", s.majority)]
    lines += [arm_line(a, s.arms[a]) for a in order]
    for a in MAIN_ARMS:
        if a in s.arms:
            lines += confusion_lines(a, s.arms[a])
    return lines
