"""The decision bench's summary (analysis/decisions.py) as terminal lines of at most 120 columns: a row per arm and
calibration method, the legend, then the main arms' confusion matrices."""
from __future__ import annotations

import textwrap

from ..analysis.decisions import ArmFigures, DecisionSummary

#: The arms shown first, in this order (the others follow).
MAIN_ARMS = ("closed_book:raw", "progressive:raw", "progressive:content_free", "progressive:relative",
             "single_shot:content_free", "single_shot:relative")


#: Table columns: name, width, alignment.
COLUMNS = (("arm:method", 26, "<"), ("n", 4, ">"), ("accuracy [95% CI]", 19, "<"), ("same q: cb / maj", 16, "<"),
           ("macro-F1", 8, ">"), ("AUC", 5, ">"), ("R->W", 4, ">"), ("W->R", 4, ">"), ("p cb", 5, ">"),
           ("p maj", 5, ">"), ("s/q", 6, ">"), ("fail", 4, ">"))
LEGEND = ("R->W / W->R: questions closed-book decided right and this arm wrong / the reverse; p: exact McNemar "
          "against closed-book (cb) and the majority class (maj); same q: their accuracy on this arm's questions; "
          "AUC: how well p(yes) / (p(yes) + p(no)) separates gold yes from gold no at any threshold (0.5: not at "
          "all; a prior shared by every run cannot change it); s/q: seconds per question; fail: runs that ended "
          "without a decision (left out).")


def _fmt(x: float | None, spec: str, missing: str = "n/a") -> str:
    return missing if x is None else format(x, spec)


def _row(cells: tuple[str, ...]) -> str:
    return "  " + " ".join(f"{c:{a}{w}}" for c, (_, w, a) in zip(cells, COLUMNS)).rstrip()


def arm_line(name: str, a: ArmFigures) -> str:
    """One table row: 'progressive:relative  200  57.3% [47.3-66.7]  57.3% / 57.3%  0.243  3  3  1.000 ...'."""
    ci = f" [{a.accuracy_ci95[0]:.1%}-{a.accuracy_ci95[1]:.1%}]".replace("%", "") if a.accuracy_ci95 else ""
    same = ("-" if a.closed_book_accuracy is None or a.majority_accuracy is None else
            f"{a.closed_book_accuracy:.1%} / {a.majority_accuracy:.1%}")
    return _row((name, str(a.n), _fmt(a.accuracy, ".1%") + ci, same, _fmt(a.macro_f1, ".3f"),
                 _fmt(a.yes_no_auc, ".2f", "-"), str(a.right_to_wrong), str(a.wrong_to_right),
                 _fmt(a.p_vs_closed_book, ".3f"), _fmt(a.p_vs_majority, ".3f"), _fmt(a.time_per_question_s, ".1f"),
                 str(a.failed_runs)))


def summary_lines(s: DecisionSummary) -> list[str]:
    """The summary as lines of at most 120 columns: a heading, the sample, the table, its legend, confusions."""
    main = [a for a in MAIN_ARMS if a in s.arms]
    sample = ", ".join(f"{k} {v}" for k, v in s.sample.items())
    lines = [f"decisions: {s.n} PubMedQA-L questions paired with closed-book; majority '{s.majority_label}'",
             *textwrap.wrap(f"sample: {sample}", 118, initial_indent="  ", subsequent_indent="    "),
             _row(tuple(c for c, _, _ in COLUMNS)), arm_line(f"majority:{s.majority_label}", s.majority)]
    lines += [arm_line(a, s.arms[a]) for a in main + sorted(a for a in s.arms if a not in MAIN_ARMS)]
    lines += textwrap.wrap(LEGEND, 118, initial_indent="  ", subsequent_indent="  ")
    for a in main:
        lines.append(f"  confusion {a} (gold -> decided):")
        lines += [f"    gold {g:<5}: " + "  ".join(f"{d} {c}" for d, c in row.items())
                  for g, row in s.arms[a].confusion.items()]
    return lines
