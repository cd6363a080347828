"""The terminal printer: the session summary pytest shows at the end of a bench session, and the failure text of
a bench instance that missed its target."""
from __future__ import annotations

from typing import Any

from tabulate import tabulate

from ..analysis.recommend import recommend
from . import comparison as C
from .quality import summary_lines as quality_lines
from .table import TABLE_LEGEND, detail_lines, rows

#: Metrics the session's comparison table shows (plus every --research-compare-fail metric).
SUMMARY_COMPARE_METRICS = ("execution_time_s", "cpu_time_s", "memory_peak_mb", "ttft_s", "decode_tokens_per_second")


def table(instances, comparison=None) -> str:
    headers, body = rows(instances, comparison)
    return tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)


def failure_text(bench: str, result: Any) -> str:
    head = f"{bench}[{result.profile}] missed its target:"
    body = "\n".join(f"  - {m}" for m in (result.messages or ["no measured run"]))
    return f"{head}\n{body}"


def gate_lines(missed) -> list[str]:
    """One line per measured, gated record that missed its target."""
    out = []
    for r in missed:
        why = "; ".join(m.splitlines()[0] for m in r.reasons) or r.outcome
        out.append(f"{r.test_id} (round {r.round}): {why}")
    return out


def findings_lines(records: Any) -> list[str]:
    """Quality summaries and data-driven recommendations (computed now, from the records) of measured runs."""
    measured = [r for r in records if not r.warmup]
    lines: list[str] = []
    for r in measured:
        q = (r.extra or {}).get("quality")
        if isinstance(q, dict) and {"arms", "majority", "early_exit", "metrics"} <= q.keys():   # a quality summary
            lines += [f"quality [{r.profile}]: {x}" for x in quality_lines(q)]
    lines += [f"recommendation: {x}" for x in recommend(measured)] if measured else []
    return lines


def session_lines(s: Any, ctx: Any) -> list[tuple[str, str]]:
    """The session summary as (kind, text): kind '' plain, 'red'/'yellow' coloured, 'sep' a red separator.
    `s` is a plugin SessionSummary, `ctx` the BenchContext."""
    o = ctx.options
    comp = s.comparison if s.compare_requested else None
    out: list[tuple[str, str]] = [
        ("", f"commit {ctx.git.short}{f' ({ctx.git.branch})' if ctx.git.branch else ''} | machine "
             f"{ctx.machine.fingerprint} | budgets: {ctx.machine_class}"
             f"{f' x{o.budget_scale:g}' if o.budget_scale != 1 else ''}"),
        ("", table(s.instances, s.comparison)),
    ]
    out += [("", line) for line in TABLE_LEGEND]
    out += [("", line) for line in detail_lines(s.instances)]
    out += [("", f"note: {n}") for row in s.instances for n in row.notes]
    out += [("", line) for line in findings_lines(s.records)]
    if s.baseline_note and (s.compare_requested or s.comparison is not None):
        out.append(("", s.baseline_note))
    if comp is not None:
        out.append(("", C.text(comp, only=[t.metric for t in o.compare_fail] + list(SUMMARY_COMPARE_METRICS))))
    elif s.compare_requested and o.compare_fail:
        out.append(("yellow", "warning: --research-compare-fail had nothing to compare with: not checked"))
    if s.missed:
        out.append(("sep", "CI gate: targets missed"))
        out += [("red", f) for f in gate_lines(s.missed)]
    if s.regressions:
        out.append(("sep", "CI gate: regressions beyond --research-compare-fail"))
        out += [("red", f) for f in C.regression_lines(comp)]
    out += [("yellow", f"results store: {line}") for line in getattr(s, "store_skipped", [])]
    out.append(("", f"{len(s.records)} record(s) appended under {o.results_dir}"))
    caps = [(r.extra or {}).get("memray_capture") for r in s.records if (r.extra or {}).get("memray_capture")]
    if caps:
        out.append(("", f"memray captures: {len(caps)} (e.g. `memray flamegraph {caps[-1]}`)"))
    return out
