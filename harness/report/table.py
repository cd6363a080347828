"""The summary table of a session's bench instances (analysis/instances.py), shared by the terminal and the
Markdown printers: its cells in units.py's formats, the legend, and the detail lines the narrow table leaves out."""
from __future__ import annotations

from typing import Sequence

from tabulate import tabulate

from ..analysis.compare import Comparison, SeriesComparison
from ..analysis.instances import InstanceSummary
from ..records import REAL_RUNNERS, label
from ..units import cell, limit, spread


def early_exit_cell(ee: dict | None) -> str:
    if not ee:
        return "-"
    if ee.get("triggered"):
        return f"yes @batch {ee.get('batch')}"
    return f"no ({ee.get('reason', '?')})"


def time_cell(row: InstanceSummary) -> str:
    t = row.time
    if t.median is None:
        return "-"
    s = spread(t.median, t.iqr, t.n, "s")
    if row.time_upper is not None:
        s += f" / {limit(row.time_upper)} s"
    return s


def memory_cell(row: InstanceSummary) -> str:
    if row.memory_peak is None:
        return "-"
    if row.memory_limit is not None:
        return f"{row.memory_peak:.0f} / {limit(row.memory_limit)} MB"
    return f"{row.memory_peak:.0f} MB"


def target_cell(row: InstanceSummary) -> str:
    if row.unverified:
        word, detail = "UNVERIFIED", ": time, busy machine"
    elif row.target_met:
        word, detail = "yes", ""
    else:
        word, detail = ("NO" if row.gated else "no"), (f": {', '.join(row.categories)}" if row.categories else "")
    cell_ = word + ("" if row.gated else "*") + detail
    if row.remeasured:
        cell_ += f" ({row.remeasured} re-measured)"
    return cell_


def name_cell(row: InstanceSummary) -> str:
    name = row.bench + (f"[{row.profile}]" if row.profile else "")
    return name + (" [TEST DOUBLE]" if row.runner and row.runner not in REAL_RUNNERS else "")


def delta_cell(sc: SeriesComparison | None) -> str:
    """The 'Δ time / mem' cell: '+12.3 % / -0.4 %', '!' after a change beyond a --research-compare-fail
    threshold, '~' before an indicative one; another metric that failed its threshold is named after them."""
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


#: The summary table's columns: narrow enough for ~100 columns; the rest of each row is in detail_lines().
HEADERS = ("bench", "runs", "time / budget", "memory / limit", "tok/s", "claims", "cit.", "target", "Δ time / mem")


def render(instances: Sequence[InstanceSummary], comparison: Comparison | None = None, tablefmt: str = "simple") -> str:
    """The summary table, one row per bench instance (its columns are explained by TABLE_LEGEND)."""
    body = []
    for r in instances:
        m = r.metrics
        runs = str(r.runs) + (f"+{r.warmups}w" if r.warmups else "")
        body.append([name_cell(r), runs, time_cell(r), memory_cell(r), cell(m.get("decode_tokens_per_second"), "tok/s"),
                     cell(m.get("claims")), cell(m.get("citation_validity"), "ratio"), target_cell(r),
                     delta_cell(comparison.for_key(r.key) if comparison is not None else None)])
    return tabulate(body, headers=list(HEADERS), tablefmt=tablefmt, disable_numparse=True)


def detail_lines(instances: Sequence[InstanceSummary]) -> list[str]:
    """What the narrow table leaves out, one line per instance: TTFT, early exit, the time band's lower bound,
    whether its verdict gates the session."""
    out = []
    for r in instances:
        parts = [f"{label('ttft_s')} {cell(r.metrics.get('ttft_s'), 's')}", f"early exit {early_exit_cell(r.early_exit)}"]
        if r.time_lower is not None:
            parts.append(f"time band {limit(r.time_lower)}-{limit(r.time_upper)} s" if r.time_upper is not None
                         else f"time lower bound {limit(r.time_lower)} s")
        if not r.gated:
            parts.append("not gated (shown, never fails the session)")
        out.append(f"{name_cell(r)}: " + "; ".join(parts))
    return out


TABLE_LEGEND = ("time: median (± IQR) / budget; memory: worst run's peak / limit; tok/s: decode; cit.: citation validity",
                "target: * not gated; Δ vs the baseline: ! beyond a --research-compare-fail threshold, ~ indicative")
