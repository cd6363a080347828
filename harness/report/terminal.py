"""The terminal printer: the lines pytest shows at the end of a bench session, and the failure text of a bench
instance that missed its target."""
from __future__ import annotations

import os
from typing import Any

from ..analysis.gate import UNVERIFIED
from ..analysis.names import HEADLINE
from ..analysis.quality import QualitySummary
from ..analysis.recommend import recommend
from ..analysis.session import pooled
from ..run.verdicts import time_message
from . import TEXT, comparison, layout, table

#: Metrics the session's comparison table shows (plus every --research-compare-fail metric): the headline ones.
SUMMARY_COMPARE_METRICS = HEADLINE


def quality_lines(q: QualitySummary) -> list[str]:
    """A quality bench's summary (templates/quality.txt.j2): what the bench prints at its end, the session again."""
    return TEXT.get_template("quality.txt.j2").render(q=q).splitlines()


def failure_text(bench: str, result: Any) -> str:
    how = ("could not be verified: every run was timed on a busy machine" if result.status == UNVERIFIED
           else "missed its target")
    return f"{bench}[{result.profile}] {how}:\n" + "\n".join(f"  - {m}" for m in result.messages or ["no measured run"])


def verdict_lines(summary, verdicts) -> list[str]:
    """One line per verdict of a SessionSummary: its test id, its runs, why it missed its target or is unverified."""
    by_id = {r.record_id: r for r in summary.records}
    out = []
    for v in verdicts:
        recs = [by_id[i] for i in v.record_ids if i in by_id]
        budget = recs[-1].budget if recs else None
        why = [m.splitlines()[0] for m in [time_message(v, budget, summary.unverified_policy), *v.run_reasons] if m]
        if len(recs) == 1:
            where = f" (round {recs[0].round})"
        else:
            again = f", {v.remeasured} re-measured" if v.remeasured else ""
            where = f" ({v.runs} round{'s' if v.runs != 1 else ''}{again})"
        out.append(f"{v.test_id}{where}: {'; '.join(why) or v.status}")
    return out


def gate_lines(summary) -> list[str]:
    """The instance runs that missed their target (a SessionSummary's `missed`, unverified ones apart)."""
    return verdict_lines(summary, [v for v in summary.missed if v.status != UNVERIFIED])


def findings_lines(records: Any) -> list[str]:
    """Quality summaries and data-driven recommendations (computed from the records when printed) of measured runs."""
    measured = [r for r in records if not r.warmup]
    lines: list[str] = []
    for r in measured:
        q = QualitySummary.of_record(r)
        if q is not None:
            lines += [f"quality [{r.profile}]: {x}" for x in quality_lines(q)]
    return lines + ([f"recommendation: {x}" for x in recommend(measured)] if measured else [])


def rates_line(aggregates: Any) -> str:
    """The footer's one line: the seed's three rates over the session's measured runs, each with its n."""
    r = pooled(aggregates)
    ee, err, nov = r["early_exit_rate"], r["error_rate"], r["novelty_score_average"]

    def share(x) -> str:
        return f"{x.count}/{x.n}" + (f" ({x.value:.0%})" if x.n else "")
    novelty = (f"{nov.value:.2f} over {nov.n} judged batch{'es' if nov.n != 1 else ''}" if nov.n
               else "no batch judged")
    return f"seed rates: early exit {share(ee)} runs | errors {share(err)} | novelty average {novelty}"


def session_lines(s: Any, ctx: Any, cols: int | None = None) -> list[tuple[str, str]]:
    """A SessionSummary as (kind, text), each text within `cols` columns: kind '' plain, 'red'/'yellow' coloured,
    'sep' a red separator, 'warn' a yellow one; `ctx` is the BenchContext."""
    cols = cols or layout.width()
    return [(kind, piece) for kind, text in _session_lines(s, ctx, cols)
            for piece in ([text] if kind in ("sep", "warn") else layout.wrap_all(text.splitlines(), cols))]


def _session_lines(s: Any, ctx: Any, cols: int) -> list[tuple[str, str]]:
    o = ctx.options
    comp = s.comparison if s.compare_requested else None
    out: list[tuple[str, str]] = [
        ("", f"commit {ctx.git.short}{f' ({ctx.git.branch})' if ctx.git.branch else ''} | machine "
             f"{ctx.machine.fingerprint} | budgets: {ctx.machine_class}"
             f"{f' x{o.budget_scale:g}' if o.budget_scale != 1 else ''}"),
        ("", table.render(s.instances, s.comparison, cols=cols)),
    ]
    out += [("", line) for line in [*table.TABLE_LEGEND, *table.detail_lines(s.instances)]]
    out += [("", f"note: {n}") for row in s.instances for n in row.notes]
    out += [("", line) for line in findings_lines(s.records)]
    if s.baseline_note:
        out.append(("", s.baseline_note))
    if comp is not None:
        out.append(("", comparison.text(comp, only=[t.metric for t in o.compare_fail] + list(SUMMARY_COMPARE_METRICS),
                                        cols=cols)))
    elif s.compare_requested and o.compare_fail:
        out.append(("yellow", "warning: --research-compare-fail had nothing to compare with: not checked"))
    if s.unverified:
        out.append(("sep" if s.unverified_policy == "fail" else "warn",
                    f"UNVERIFIED: time budget missed only on a busy machine (--research-unverified="
                    f"{s.unverified_policy})"))
        out += [("red" if s.unverified_policy == "fail" else "yellow", f) for f in verdict_lines(s, s.unverified)]
    missed = gate_lines(s)
    if missed:
        out.append(("sep", "CI gate: targets missed"))
        out += [("red", f) for f in missed]
    if s.regressions:
        out.append(("sep", "CI gate: regressions beyond --research-compare-fail"))
        out += [("red", f) for f in comparison.regression_lines(comp)]
    out += [("yellow", f"results store: {line}") for line in s.store_skipped]
    if s.aggregates:
        out.append(("", rates_line(s.aggregates)))
    rel = os.path.relpath(o.results_dir)                # shorter, where the results lie under the working directory
    out.append(("", f"{len(s.records) - s.unsaved} record(s) appended under "
                    f"{o.results_dir if rel.startswith('..') else rel}"))
    caps = [(r.extra or {}).get("memray_capture") for r in s.records if (r.extra or {}).get("memray_capture")]
    if caps:
        out.append(("", f"memray captures: {len(caps)} (e.g. `memray flamegraph {caps[-1]}`)"))
    return out

