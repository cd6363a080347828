"""Presentation only: the terminal summary table (tabulate), the Markdown summary, JUnit XML properties and
failure texts. Metric labels and units come from the telemetry schema (x-label, x-unit)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from tabulate import tabulate

from llm_research_bench.harness.budgets import fmt_limit
from llm_research_bench.harness.compare import Comparison, SeriesComparison, describe_test, summarize
from llm_research_bench.harness.store import ResultRecord

#: Telemetry metrics the summary row shows, besides time and memory (names checked against the schema).
ROW_METRICS = ("ttft_s", "decode_tokens_per_second", "claims", "citation_validity")
#: Metrics the session's comparison table shows (plus every --compare-fail metric).
SUMMARY_COMPARE_METRICS = ("execution_time_s", "memory_peak_mb", "ttft_s", "decode_tokens_per_second")
#: Metrics JUnit XML gets as properties (median over the measured runs).
JUNIT_METRICS = ("execution_time_s", "memory_peak_mb", "ttft_s", "decode_tokens_per_second", "tokens_generated",
                 "claims", "citation_validity")


def _specs() -> dict[str, dict]:
    from llm_research_bench.engine.telemetry import metric_specs
    return metric_specs()


def label(metric: str) -> str:
    return _specs().get(metric, {}).get("x-label") or metric


def unit(metric: str) -> str:
    return _specs().get(metric, {}).get("x-unit", "")


def fmt_num(v: Any, u: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    a = abs(v)
    if u == "ratio":
        s = f"{v:.2f}"
    elif a >= 100:
        s = f"{v:.0f}"
    elif a >= 10:
        s = f"{v:.1f}"
    elif a >= 1 or a == 0:
        s = f"{v:.2f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)
    else:
        s = f"{v:.3f}"
    return f"{s} {u}".strip() if u and u not in ("ratio", "tok", "tok/s") else s


def _decimals(v: float) -> int:
    a = abs(v)
    return 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 1 or a == 0 else 3


def fmt_spread(median: float | None, iqr: float | None, n: int, u: str = "") -> str:
    """'14.0 ±1.0 s': a median and, over several runs, its IQR, at the median's precision."""
    if median is None:
        return "-"
    if u == "s" and abs(median) < 1:                  # inter-token latencies read better in ms
        median, iqr, u = median * 1000, (iqr * 1000 if iqr is not None else None), "ms"
    d = 2 if u == "ratio" else _decimals(median)
    if u in ("", "tok") and float(median).is_integer() and (iqr is None or float(iqr).is_integer()):
        d = 0                                          # counts (claims, tokens)
    s = f"{median:.{d}f}"
    if n > 1 and iqr is not None:
        s += f" ±{iqr:.{d}f}"
    return f"{s} {u}".strip() if u and u not in ("ratio", "tok", "tok/s") else s


# ---------------------------------------------------------------------------------------------------- rows --
@dataclass
class Row:
    """One bench instance (test id) of a session: what the summary table shows."""
    test_id: str
    bench: str
    profile: str | None
    runs: int
    warmups: int
    time: Any                                   # compare.Summary of execution_time_s
    time_upper: float | None
    time_lower: float | None
    memory_peak: float | None                   # worst measured run
    memory_limit: float | None
    metrics: dict[str, Any]                     # ROW_METRICS -> median
    early_exit: str
    target_met: bool
    gated: bool
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    runner: str | None = None
    delta: str = "-"


def _early_exit(tel: dict | None) -> str:
    ee = (tel or {}).get("early_exit") or {}
    if not ee:
        return "-"
    if ee.get("triggered"):
        return f"yes @batch {ee.get('batch')}"
    return f"no ({ee.get('reason', '?')})"


def rows_from_records(records: Iterable[ResultRecord]) -> list[Row]:
    groups: dict[str, list[ResultRecord]] = {}
    for r in records:
        groups.setdefault(r.test_id, []).append(r)
    rows = []
    for tid, recs in groups.items():
        measured = [r for r in recs if not r.warmup] or recs
        vals = [r for r in measured if r.telemetry is not None]
        budget = (measured[-1].budget or {})
        peaks = [((r.extra or {}).get("verdict") or {}).get("memory_peak_mb") or r.metric("memory_peak_mb")
                 for r in measured]
        peaks = [p for p in peaks if isinstance(p, (int, float))]
        reasons, notes = [], []
        for r in measured:
            reasons += [m for m in r.reasons if m not in reasons]
            notes += [m for m in (r.extra or {}).get("notes", []) if m not in notes]
        runner = next(((r.extra or {}).get("runner") for r in measured if (r.extra or {}).get("runner")), None)
        rows.append(Row(
            test_id=tid, bench=measured[-1].bench, profile=measured[-1].profile,
            runs=len([r for r in recs if not r.warmup]), warmups=len([r for r in recs if r.warmup]),
            time=summarize(r.metric("execution_time_s") for r in vals),
            time_upper=budget.get("time_upper_s"), time_lower=budget.get("time_lower_s"),
            memory_peak=max(peaks) if peaks else None, memory_limit=budget.get("memory_mb"),
            metrics={m: summarize(r.metric(m) for r in vals).median for m in ROW_METRICS},
            early_exit=_early_exit(vals[-1].telemetry if vals else None),
            target_met=all(r.target_met for r in measured),
            gated=any((r.extra or {}).get("gate", True) for r in measured),
            reasons=reasons, notes=notes, outcomes=[r.outcome for r in measured], runner=runner))
    return rows


def _time_cell(row: Row) -> str:
    t = row.time
    if t.median is None:
        return "-"
    s = fmt_spread(t.median, t.iqr, t.n, "s")
    if row.time_upper is not None:
        s += f" / {fmt_limit(row.time_upper)} s"
    if row.time_lower is not None and t.median < row.time_lower:
        s += f" (under {fmt_limit(row.time_lower)} s)"
    return s


def _mem_cell(row: Row) -> str:
    if row.memory_peak is None:
        return "-"
    s = f"{row.memory_peak:.0f} MB"
    if row.memory_limit is not None:
        s += f" / {fmt_limit(row.memory_limit)} MB"
    return s


def _target_cell(row: Row) -> str:
    if row.target_met:
        cell = "yes"
    else:
        codes = []
        for reason in row.reasons:
            for code, word in (("budget", "time"), ("memory peak", "memory"), ("schema", "schema"),
                               ("claim", "quality"), ("citation", "quality"), ("timed out", "timeout"),
                               ("crashed", "crash"), ("run failed", "failed"), ("no telemetry", "failed")):
                if code in reason and word not in codes:
                    codes.append(word)
        cell = "NO" + (f" ({', '.join(codes)})" if codes else "")
    if not row.gated:
        cell += " [not gated]"
    return cell


def delta_cell(sc: SeriesComparison | None) -> str:
    if sc is None:
        return "-"
    parts = []
    for name in ("execution_time_s", "memory_peak_mb"):
        d = sc.delta(name)
        if d is not None and d.delta_pct is not None:
            parts.append(f"{d.label} {d.delta_pct:+.1f} %{' !' if d.failed else ''}")
    for d in sc.deltas:
        if d.failed and d.metric not in ("execution_time_s", "memory_peak_mb"):
            parts.append(f"{d.label} {d.delta_pct:+.1f} % !")
    if not parts:
        return "-"
    indicative = any(d.indicative for d in sc.deltas)
    return ", ".join(parts) + (" (indicative)" if indicative else "")


def table_rows(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    headers = ["bench", "profile", "runs", f"{label('execution_time_s')} (median) / budget",
               f"{label('memory_peak_mb')} (max) / limit"] + [label(m) for m in ROW_METRICS[:2]] + \
              ["early exit"] + [label(m) for m in ROW_METRICS[2:]] + ["target_met", "Δ vs baseline"]
    body = []
    for r in rows:
        m = r.metrics
        runs = str(r.runs) + (f"+{r.warmups}w" if r.warmups else "")
        body.append([r.bench + ("  [TEST DOUBLE]" if r.runner and r.runner not in ("engine:research", "llm_research_bench.engine:research",
                                                                                  "bench-supplied telemetry")
                                else ""),
                     r.profile or "-", runs, _time_cell(r), _mem_cell(r),
                     fmt_num(m.get("ttft_s"), "s"), fmt_num(m.get("decode_tokens_per_second")), r.early_exit,
                     fmt_num(m.get("claims")), fmt_num(m.get("citation_validity"), "ratio"), _target_cell(r), r.delta])
    return headers, body


def terminal_table(rows: Sequence[Row]) -> str:
    headers, body = table_rows(rows)
    return tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)


# ----------------------------------------------------------------------------------------------- compare --
def comparison_table(comp: Comparison, *, tablefmt: str = "simple", only: Sequence[str] | None = None) -> str:
    body = []
    for s in comp.series:
        for d in s.deltas:
            if only is not None and d.metric not in only and not d.failed and d.threshold is None:
                continue
            b, c = d.base, d.cur
            verdict = ("FAIL" if d.failed else
                       "indicative" if d.indicative else
                       ("ok" if d.threshold is not None else ""))
            body.append([f"{s.bench}[{s.profile}]", d.label, _stat(b, d.unit), _stat(c, d.unit),
                         "-" if d.delta_pct is None else f"{d.delta_pct:+.1f} %", d.change,
                         describe_test(d.test) if d.test.method not in ("none",) else "-",
                         f"{d.threshold.pct:g} %" if d.threshold else "", verdict])
    headers = ["bench", "metric", f"baseline ({comp.baseline})", f"current ({comp.current})", "Δ", "change",
               "noise test", "threshold", "verdict"]
    return tabulate(body, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def _stat(s: Any, u: str) -> str:
    if s.median is None:
        return "-"
    return f"{fmt_spread(s.median, s.iqr, s.n, u)} (n={s.n})"


def comparison_text(comp: Comparison, *, only: Sequence[str] | None = None) -> str:
    lines = [f"Comparison: baseline {comp.baseline} -> current {comp.current}"]
    if comp.series:
        lines.append(comparison_table(comp, only=only))
    else:
        lines.append("  no bench instance has usable runs on both sides")
    for s in comp.series:
        for n in s.notes:
            lines.append(f"  note: {s.bench}[{s.profile}]: {n}")
        for d in s.deltas:
            if d.note:
                lines.append(f"  note: {s.bench}[{s.profile}] {d.metric}: {d.note}")
    if comp.only_in_current:
        lines.append(f"  no baseline runs for: {', '.join(comp.only_in_current)}")
    if comp.only_in_baseline:
        lines.append(f"  no usable run this time (failed or timed out): {', '.join(comp.only_in_baseline)}")
    for f in comp.failures:
        lines.append(f"  REGRESSION: {f}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- markdown --
def markdown(rows: Sequence[Row], *, comparison: Comparison | None = None, gate_failures: Sequence[str] = (),
             compare_failures: Sequence[str] = (), header: str = "Research bench", context: str = "") -> str:
    headers, body = table_rows(rows)
    ok = not gate_failures and not compare_failures
    if not rows:
        return f"## {header}: no bench ran\n\n{context}\n"
    out = [f"## {header}: {'targets met' if ok else 'FAILED'}", ""]
    if context:
        out += [context, ""]
    out += [tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), ""]
    if gate_failures:
        out += ["### Targets missed", ""] + [f"- {_md_escape(m)}" for m in gate_failures] + [""]
    notes = [n for r in rows for n in r.notes]
    if notes:
        out += ["### Notes", ""] + [f"- {_md_escape(n)}" for n in notes] + [""]
    if comparison is not None:
        out += [f"### Comparison with {comparison.baseline}", ""]
        if comparison.series:
            out += [comparison_table(comparison, tablefmt="github"), ""]
            out += [f"- note: {sc.bench}[{sc.profile}]: {n}" for sc in comparison.series for n in sc.notes]
            out += [f"- note: {sc.bench}[{sc.profile}] {d.metric}: {_md_escape(d.note)}"
                    for sc in comparison.series for d in sc.deltas if d.note]
            out += [""]
        else:
            out += ["No bench instance has usable runs on both sides.", ""]
    if compare_failures:
        out += ["### Regressions", ""] + [f"- {_md_escape(m)}" for m in compare_failures] + [""]
    return "\n".join(out)


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", "<br>")


# ------------------------------------------------------------------------------------------------- junit --
def junit_properties(result: Any) -> list[tuple[str, Any]]:
    """Key metrics of a BenchResult as (name, value) for JUnit XML <property> elements."""
    props: list[tuple[str, Any]] = [("research_bench.profile", result.profile),
                                    ("research_bench.target_met", result.target_met),
                                    ("research_bench.runs", len(result.measured))]
    for m in JUNIT_METRICS:
        s = result.metric(m)
        if s.median is not None:
            props.append((m, round(s.median, 6)))
            if m == "execution_time_s" and s.n > 1:
                props.append(("execution_time_s_iqr", round(s.iqr, 6)))
    if result.budget is not None:
        props += [("time_budget_s", result.budget.time_upper_s), ("memory_limit_mb", result.budget.memory_mb)]
    if result.messages and not result.target_met:
        props.append(("research_bench.reasons", " | ".join(result.messages)))
    return props


def failure_text(bench: str, result: Any) -> str:
    head = f"{bench}[{result.profile}] missed its target:"
    body = "\n".join(f"  - {m}" for m in (result.messages or ["no measured run"]))
    return f"{head}\n{body}"


# ------------------------------------------------------------------------------------------ terminal summary --
def findings_lines(records: Any) -> list[str]:
    """Quality summaries and data-driven recommendations over this session's measured records."""
    from llm_research_bench.harness.quality import summary_lines
    from llm_research_bench.harness.recommend import recommend

    measured = [r for r in records if not r.warmup]
    lines: list[str] = []
    for r in measured:
        q = (r.extra or {}).get("quality")
        if isinstance(q, dict) and {"arms", "majority", "early_exit", "metrics"} <= q.keys():   # a quality-bench summary
            lines += [f"quality [{r.profile}]: {x}" for x in summary_lines(q)]
    lines += [f"recommendation: {x}" for x in recommend(measured)] if measured else []
    return lines


def session_lines(s: Any, ctx: Any) -> list[tuple[str, str]]:
    """The session summary as (kind, text): kind '' plain, 'red'/'yellow' coloured, 'sep' a red separator.
    `s` is a harness.summary.SessionSummary, `ctx` the BenchContext."""
    o = ctx.options
    out: list[tuple[str, str]] = [
        ("", f"commit {ctx.git.short}{f' ({ctx.git.branch})' if ctx.git.branch else ''} | machine "
             f"{ctx.machine.fingerprint} | budgets: {ctx.machine_class}"
             f"{f' x{o.budget_scale:g}' if o.budget_scale != 1 else ''}"),
        ("", terminal_table(s.rows)),
    ]
    out += [("", f"note: {n}") for row in s.rows for n in row.notes]
    out += [("", line) for line in findings_lines(s.records)]
    if s.baseline_note and (s.compare_requested or s.comparison is not None):
        out.append(("", s.baseline_note))
    if s.comparison is not None and s.compare_requested:
        out.append(("", comparison_text(s.comparison, only=[t.metric for t in o.compare_fail]
                                        + list(SUMMARY_COMPARE_METRICS))))
    elif s.compare_requested and o.compare_fail:
        out.append(("yellow", "warning: --compare-fail had nothing to compare with: not checked"))
    if s.gate_failures:
        out.append(("sep", "CI gate: targets missed"))
        out += [("red", f) for f in s.gate_failures]
    if s.compare_failures:
        out.append(("sep", "CI gate: regressions beyond --compare-fail"))
        out += [("red", f) for f in s.compare_failures]
    out.append(("", f"{len(s.records)} record(s) appended under {o.results_dir}"))
    caps = [(r.extra or {}).get("memray_capture") for r in s.records if (r.extra or {}).get("memray_capture")]
    if caps:
        out.append(("", f"memray captures: {len(caps)} (e.g. `memray flamegraph {caps[-1]}`)"))
    return out
