"""A comparison (analysis/compare.py) in words and tables: the regression lines, the noise test, the notes
on what makes a comparison less trustworthy, the table of per-metric deltas, and the summary table's Δ cell."""
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
    """The noise test and the method it used: 'permutation p=0.008 (5 v 5 runs)', 'history noise p=0.03 (3 v 3
    runs; noise from 15 runs on 5 recent commits)', 'indicative (3 v 3 runs: ...)'. one_sided: the p toward the
    worse direction, the one the gate decides on ('permutation p=0.004 one-sided (5 v 5 runs, ...)')."""
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


def series_name(s: SeriesComparison) -> str:
    return s.key


def regression_line(s: SeriesComparison, d: MetricDelta) -> str:
    """'pipeline[quick] execution_time_s: 13.4 -> 16.1 s (+20.1 %, worse; trimmed mean +19.8 %; threshold 10 %;
    permutation p=0.004 one-sided (5 v 5 runs, spike-trimmed))': the medians, their change, the change the gate
    held against the threshold (the test's spike-trimmed mean of log values), the test."""
    assert d.threshold is not None
    est = f"trimmed mean {d.test.change_pct:+.1f} %; " if d.test.change_pct is not None else ""
    return (f"{series_name(s)} {d.metric}: {d.base.median:.4g} -> {d.cur.median:.4g} {d.unit} "
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
    """A deterministic counter that moved: 'tokens_generated changed: 161 -> 160 (...)'."""
    def vals(xs):
        return ", ".join(num(x, d.unit, show_unit=False) for x in xs)
    return (f"{d.metric} changed: {vals(d.base_values)} -> {vals(d.cur_values)} {d.unit} (a deterministic counter "
            f"under greedy decoding: any change is real, not noise)").replace("  ", " ")


def power_note(d: MetricDelta) -> str:
    """What the gate could have caught: 'gate power: with these 5 v 5 runs (spread 6.8 % a run, from 10 runs) the
    gate catches a change of +20 % 9 times in 10; +10 % (twice the 5 % threshold) needs about 12 rounds a side'."""
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
    out = [f"{series_name(s)}: {n}" for s in comp.series for n in condition_notes(s.conditions)]
    out += [f"{series_name(s)} {changed_note(d)}" for s in comp.series for d in s.deltas if d.change == "changed"]
    out += [f"{series_name(s)} {d.metric}: {not_failed_note(d)}" for s in comp.series for d in s.deltas
            if d.not_failed_because]
    out += [f"{series_name(s)} {d.metric}: {power_note(d)}" for s in comp.series for d in s.deltas if d.power]
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
            body.append([series_name(s), d.label, _stat(b, d.unit), _stat(c, d.unit),
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


def delta_cell(sc: SeriesComparison | None) -> str:
    """The summary table's 'Δ time / mem' cell: '+12.3 % / -0.4 %', '!' after a change beyond a
    --research-compare-fail threshold, '~' before an indicative one (one run on a side); another metric that
    failed its threshold is named after them."""
    if sc is None:
        return "-"
    parts = []
    for name in ("execution_time_s", "memory_peak_mb"):
        d = sc.delta(name)
        parts.append("-" if d is None or d.delta_pct is None else
                     f"{'~' if d.indicative else ''}{d.delta_pct:+.1f} %{'!' if d.failed else ''}")
    s = " / ".join(parts) if any(p != "-" for p in parts) else "-"
    failed = [d for d in sc.deltas if d.failed and d.metric not in ("execution_time_s", "memory_peak_mb")]
    return s + "".join(f", {d.label} {d.delta_pct:+.1f} %!" for d in failed)
