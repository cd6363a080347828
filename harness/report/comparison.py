"""A comparison (analysis/compare.py) in words and tables: the regression lines, the noise test, the notes
on what makes a comparison less trustworthy, and the table of per-metric deltas."""
from __future__ import annotations

from typing import Any, Sequence

from tabulate import tabulate

from ..analysis.compare import Comparison, Conditions, MetricDelta, SeriesComparison
from ..analysis.power import MULTIPLES, ROUNDS
from ..analysis.stats import COUNTER, NO_HISTORY, ONE_RUN, TWO_RUNS, Test
from ..units import num, spread

#: Why a result is only indicative, in words (analysis/stats.py's codes).
INDICATIVE_WHY = {
    ONE_RUN: "1 run on a side: no noise estimate",
    TWO_RUNS: "too few runs for the permutation test, and 2 runs cannot tell a spike from a change",
    NO_HISTORY: "too few runs for the permutation test, and too little history of this series on recent commits",
}


def describe_test(t: Test, *, one_sided: bool = False) -> str:
    """The noise test, its method and run counts; one_sided: the p toward the worse direction, the one the gate
    decides on."""
    sizes = f"{t.n_base} v {t.n_cur} runs"
    p = t.p_value
    side = ""
    if one_sided and t.p_worse is not None:
        p, side = t.p_worse, " one-sided"
    if t.method == "indicative":
        return f"indicative ({sizes}: {INDICATIVE_WHY.get(t.why, t.why)})"
    if t.method == "permutation":
        return f"permutation p={p:.3g}{side} ({sizes}, spike-trimmed)"
    if t.method == "history":
        return (f"history noise p={p:.3g}{side} ({sizes}; noise from {t.history_runs} runs on "
                f"{t.history_commits} recent commits)")
    if t.method == "exact":
        return "exact (deterministic counter)" if t.why == COUNTER else "no run-to-run spread"
    return t.method


def regression_line(s: SeriesComparison, d: MetricDelta) -> str:
    """A regression in words: the medians, their change, the change the gate held against the threshold (the
    test's spike-trimmed mean of log values), and the test."""
    assert d.threshold is not None
    est = f"trimmed mean {d.test.change_pct:+.1f} %; " if d.test.change_pct is not None else ""
    return (f"{s.key} {d.metric}: {d.base.median:.4g} -> {d.cur.median:.4g} {d.unit} "
            f"({d.delta_pct:+.1f} %, worse; {est}threshold {d.threshold.pct:g} %; "
            f"{describe_test(d.test, one_sided=True)})")


def regression_lines(comp: Comparison | None) -> list[str]:
    return [regression_line(s, d) for s, d in comp.regressions] if comp is not None else []


def not_failed_note(d: MetricDelta) -> str:
    if d.not_failed_because == "indicative":
        return (f"beyond the {d.threshold.pct:g} % threshold but indicative only "
                f"({INDICATIVE_WHY.get(d.test.why, d.test.why)}): not failed; measure 4 or more rounds "
                f"(--research-rounds) on both commits, or 5+ for robustness to a spike, to judge")
    if d.not_failed_because == "noise":
        return (f"beyond the {d.threshold.pct:g} % threshold but not distinguishable from noise "
                f"({describe_test(d.test, one_sided=True)}): not failed")
    return ""


def condition_notes(c: Conditions) -> list[str]:
    out = []
    if c.profile_differs:
        out.append("profile settings differ from the baseline's")
    if c.dirty_current:
        out.append("current runs come from a dirty working tree")
    if c.memray_traced:
        out.append(f"{c.memray_traced} run(s) traced by memray: their timings are inflated")
    if c.contended_base or c.contended_cur:
        out.append(f"timed on a busy machine: {c.contended_base} of {c.n_base} baseline and {c.contended_cur} of "
                   f"{c.n_cur} current runs (other processes' CPU load): timing deltas are not trustworthy")
    return out


def changed_note(d: MetricDelta) -> str:
    """A deterministic counter that moved: its values on both sides."""
    def vals(xs):
        return ", ".join(num(x, d.unit, show_unit=False) for x in xs)
    return (f"{d.metric} changed: {vals(d.base_values)} -> {vals(d.cur_values)} {d.unit} (a deterministic counter "
            f"under greedy decoding: any change is real, not noise)").replace("  ", " ")


def power_note(d: MetricDelta) -> str:
    """What the gate could have caught with these runs, and the rounds a side twice the threshold needs."""
    p = d.power
    if p is None or d.threshold is None:
        return ""
    sign = "+" if d.better == "lower" else "-"
    catch = (f"catches a change of {sign}{p.detectable_pct:g} % 9 times in 10" if p.detectable_pct is not None
             else f"does not catch even {sign}{d.threshold.pct * MULTIPLES[-1]:g} % 9 times in 10")
    need = (f"about {p.rounds_needed} rounds a side" if p.rounds_needed is not None
            else f"more than {ROUNDS[-1]} rounds a side")
    rough = "; a rough estimate, from few runs" if p.residuals < 30 else ""
    return (f"gate power: with these {p.n_base} v {p.n_cur} runs (spread {p.spread_pct:.1f} % a run, from "
            f"{p.residuals} runs) the gate {catch}; {sign}{p.target_pct:g} % (twice the {d.threshold.pct:g} % "
            f"threshold) needs {need}{rough}")


def notes(comp: Comparison) -> list[str]:
    out = [f"{s.key}: {n}" for s in comp.series for n in condition_notes(s.conditions)]
    out += [f"{s.key} {changed_note(d)}" for s in comp.series for d in s.deltas if d.change == "changed"]
    out += [f"{s.key} {d.metric}: {not_failed_note(d)}" for s in comp.series for d in s.deltas
            if d.not_failed_because]
    out += [f"{s.key} {d.metric}: {power_note(d)}" for s in comp.series for d in s.deltas if d.power]
    return out


def _stat(s: Any, u: str) -> str:
    if s.median is None:
        return "-"
    return f"{spread(s.median, s.iqr, s.n, u)} (n={s.n})"


def table(comp: Comparison, *, tablefmt: str = "simple", only: Sequence[str] | None = None) -> str:
    body = []
    for s in comp.series:
        for d in s.deltas:
            if only is not None and d.metric not in only and not d.failed and d.threshold is None \
                    and d.change != "changed":
                continue
            b, c = d.base, d.cur
            verdict = ("FAIL" if d.failed else "indicative" if d.indicative else
                       ("ok" if d.threshold is not None else ""))
            body.append([s.key, d.label, _stat(b, d.unit), _stat(c, d.unit),
                         "-" if d.delta_pct is None else f"{d.delta_pct:+.1f} %", d.change,
                         describe_test(d.test) if d.test.method not in ("none",) else "-",
                         f"{d.threshold.pct:g} %" if d.threshold else "", verdict])
    headers = ["bench", "metric", f"baseline ({comp.baseline})", f"current ({comp.current})", "Δ", "change",
               "noise test", "threshold", "verdict"]
    return tabulate(body, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def text(comp: Comparison, *, only: Sequence[str] | None = None) -> str:
    lines = [f"Comparison: baseline {comp.baseline} -> current {comp.current}"]
    if comp.series:
        lines.append(table(comp, only=only))
    else:
        lines.append("  no bench instance has usable runs on both sides")
    lines += [f"  note: {n}" for n in notes(comp)]
    if comp.only_in_current:
        lines.append(f"  no baseline runs for: {', '.join(comp.only_in_current)}")
    if comp.only_in_baseline:
        lines.append(f"  no usable run this time (failed or timed out): {', '.join(comp.only_in_baseline)}")
    lines += [f"  REGRESSION: {f}" for f in regression_lines(comp)]
    return "\n".join(lines)
