"""A comparison (analysis/compare.py) in words (templates/comparison.txt.j2), as a table of per-metric deltas, and
as Markdown or JSON for the commands."""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Sequence

from ..analysis.compare import Comparison, Conditions
from ..analysis.stats import COUNTER, MULTIPLES, NO_HISTORY, ONE_RUN, ROUNDS, TWO_RUNS, Test
from ..units import HUGE, spread
from . import TEXT, layout

#: Why a result is only indicative, in words (analysis/stats.py's codes).
INDICATIVE_WHY = {
    ONE_RUN: "1 run on a side: no noise estimate",
    TWO_RUNS: "too few runs for the permutation test, and 2 runs cannot tell a spike from a change",
    NO_HISTORY: "too few runs for the permutation test, and too little history of this series on recent commits",
}
TEXT.globals.update(why=INDICATIVE_WHY, counter=COUNTER, multiples=MULTIPLES, rounds=ROUNDS)
_WORDS = TEXT.get_template("comparison.txt.j2").module


def regression_lines(comp: Comparison | None) -> list[str]:
    """Each regression in words: the medians, their change, the test's trimmed change, the threshold, the test."""
    return [_WORDS.regression_line(s, d) for s, d in comp.regressions] if comp is not None else []


#: Why a change beyond its threshold did not fail; what the gate could have caught with these runs.
not_failed_note, power_note = _WORDS.not_failed_note, _WORDS.power_note


def condition_notes(c: Conditions) -> list[str]:
    return [note for applies, note in (
        (c.profile_differs, "profile settings differ from the baseline's"),
        (c.dirty_current, "current runs come from a dirty working tree"),
        (c.memray_traced, f"{c.memray_traced} run(s) traced by memray: their timings are inflated"),
        (c.contended_base or c.contended_cur, f"timed on a busy machine: {c.contended_base} of {c.n_base} baseline "
         f"and {c.contended_cur} of {c.n_cur} current runs (other processes' CPU load): timing deltas are not "
         f"trustworthy")) if applies]


def notes(comp: Comparison) -> list[str]:
    out = [f"{s.key}: {n}" for s in comp.series for n in condition_notes(s.conditions)]
    out += [f"{s.key} {_WORDS.changed_note(d)}" for s in comp.series for d in s.deltas if d.change == "changed"]
    out += [f"{s.key} {d.metric}: {not_failed_note(d)}" for s in comp.series for d in s.deltas
            if d.not_failed_because]
    out += [f"{s.key} {d.metric}: {power_note(d)}" for s in comp.series for d in s.deltas if d.power]
    return out


def _stat(s: Any, u: str) -> str:
    return "-" if s.median is None else f"{spread(s.median, s.iqr, s.n, u)} (n={s.n})"


def _delta(p: float | None) -> str:
    """The Δ column: '+4.0 %'; a huge change in scientific notation."""
    return "-" if p is None else f"{p:+.3g} %" if abs(p) >= HUGE else f"{p:+.1f} %"


#: The noise test's method as the table's short code, and each code's meaning for the legend under the table.
TEST_CODES = {"permutation": ("perm", "permutation test, spike-trimmed"),
              "history": ("hist", "noise from this series' runs on recent commits"),
              ONE_RUN: ("~1", "indicative: 1 run on a side"), TWO_RUNS: ("~2", "indicative: 2 runs on a side"),
              NO_HISTORY: ("~h", "indicative: too few runs and too little history"),
              COUNTER: ("exact", "deterministic counter"), "exact": ("flat", "no run-to-run spread")}


def test_code(t: Test) -> str:
    """The noise test in a few characters: 'perm p=0.031', 'hist p=0.4', '~2' (indicative: 2 runs), 'exact'."""
    key = t.why if t.method in ("indicative", "exact") and t.why in TEST_CODES else t.method
    code = TEST_CODES.get(key, (t.method, ""))[0]
    return f"{code} p={t.p_value:.2g}" if t.method in ("permutation", "history") and t.p_value is not None else code


def _rows(comp: Comparison, only: Sequence[str] | None) -> tuple[list[list[str]], set[str]]:
    body, codes = [], set()
    for s in comp.series:
        shown = [d for d in s.deltas if only is None or d.metric in only or d.failed or d.threshold is not None
                 or d.change == "changed"]
        for j, d in enumerate(shown):
            code = test_code(d.test) if d.test.method != "none" else "-"
            codes.add(code.split(" ")[0])
            body.append(["" if j else s.key, d.label, _stat(d.base, d.unit), _stat(d.cur, d.unit), _delta(d.delta_pct),
                         d.change, code, f"{d.threshold.pct:g} %" if d.threshold else "",
                         d.verdict or ("indicative" if d.indicative else "")])
    return body, codes


HEADERS = ["bench", "metric", "baseline", "current", "Δ", "change", "test", "threshold", "verdict"]


def table(comp: Comparison, *, tablefmt: str = "simple", only: Sequence[str] | None = None,
          cols: int | None = None) -> str:
    """The per-metric deltas, one row per series and metric, with the legend of the noise tests' codes under it;
    a plain-text table wraps its cells to fit `cols`, a Markdown one keeps a row a line."""
    body, codes = _rows(comp, only)
    simple = tablefmt == "simple"
    out = layout.table(body, HEADERS, wrappable=(0, 1, 2, 3) if simple else (), tablefmt=tablefmt, cols=cols)
    legend = "; ".join(f"{code} = {what}" for code, what in TEST_CODES.values() if code in codes)
    return out + (("\n" if simple else "\n\n") + "test: " + legend if legend else "")


def text(comp: Comparison, *, only: Sequence[str] | None = None, cols: int | None = None) -> str:
    """The comparison in words and a table, every line within `cols` columns."""
    lines = [f"Comparison: baseline {comp.baseline} -> current {comp.current}",
             table(comp, only=only, cols=cols) if comp.series else "  no bench instance has usable runs on both sides"]
    lines += [f"  note: {n}" for n in notes(comp)]
    if comp.only_in_current:
        lines.append(f"  no baseline runs for: {', '.join(comp.only_in_current)}")
    if comp.only_in_baseline:
        lines.append(f"  no usable run this time (failed or timed out): {', '.join(comp.only_in_baseline)}")
    lines += rate_lines(comp) + [f"  REGRESSION: {f}" for f in regression_lines(comp)]
    return "\n".join(layout.wrap_all("\n".join(lines).splitlines(), cols, indent="    "))


def markdown(comp: Comparison, head: Sequence[str], with_notes: bool = False) -> str:
    """The comparison in Markdown: the `head` paragraphs, the table, then a bullet per note, rate and regression."""
    bullets = [f"- note: {n}" for n in notes(comp)] if with_notes else []
    bullets += [f"- {line.strip()}" for line in rate_lines(comp)]
    bullets += [f"- REGRESSION: {f}" for f in regression_lines(comp)]
    return "\n".join(["\n\n".join([*head, table(comp, tablefmt="github")]), *bullets])


def as_json(comp: Comparison, head: dict, tail: dict | None = None) -> str:
    """The comparison as JSON, its regressions in words as `failures`, between `head` and `tail`."""
    doc = {**head, **asdict(comp), "failures": regression_lines(comp), **(tail or {})}
    return json.dumps(doc, indent=1, default=str)


def rate_lines(comp: Comparison) -> list[str]:
    """The seed's rates per bench x profile on both sides (analysis/session.py), each with its n and its test."""
    def val(metric: str, v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}" if metric == "novelty_score_average" else f"{v:.0%}"
    return [f"  rate {d.key} {d.metric}: {val(d.metric, d.base)} (n={d.n_base}) -> {val(d.metric, d.cur)} "
            f"(n={d.n_cur}){f', {d.method} p={d.p_value:.2g}' if d.p_value is not None else ''}: {d.verdict}"
            for d in comp.rates]
