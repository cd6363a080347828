"""The summary table of a session's bench instances (analysis/instances.py), shared by the terminal and the
Markdown printers: headers from the schema's labels, cells in units.py's formats."""
from __future__ import annotations

from typing import Sequence

from ..analysis.compare import Comparison
from ..analysis.instances import ROW_METRICS, InstanceSummary
from ..records import REAL_RUNNERS, label
from ..units import cell, limit, spread
from .comparison import delta_cell


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
    if row.time_lower is not None and t.median < row.time_lower:
        s += f" (under {limit(row.time_lower)} s)"
    return s


def memory_cell(row: InstanceSummary) -> str:
    if row.memory_peak is None:
        return "-"
    s = f"{row.memory_peak:.0f} MB"
    if row.memory_limit is not None:
        s += f" / {limit(row.memory_limit)} MB"
    return s


def target_cell(row: InstanceSummary) -> str:
    if row.unverified:
        cell_ = "UNVERIFIED (time, busy machine)"
    else:
        cell_ = "yes" if row.target_met else "NO" + (f" ({', '.join(row.categories)})" if row.categories else "")
    if row.remeasured:
        cell_ += f" [{row.remeasured} re-measured]"
    if not row.gated:
        cell_ += " [not gated]"
    return cell_


def rows(instances: Sequence[InstanceSummary], comparison: Comparison | None = None) -> tuple[list[str], list[list[str]]]:
    headers = ["bench", "profile", "runs", f"{label('execution_time_s')} (median) / budget",
               f"{label('memory_peak_mb')} (max) / limit"] + [label(m) for m in ROW_METRICS[:2]] + \
              ["early exit"] + [label(m) for m in ROW_METRICS[2:]] + ["target_met", "Δ vs baseline"]
    body = []
    for r in instances:
        m = r.metrics
        runs = str(r.runs) + (f"+{r.warmups}w" if r.warmups else "")
        double = r.runner and r.runner not in REAL_RUNNERS
        body.append([r.bench + ("  [TEST DOUBLE]" if double else ""), r.profile or "-", runs, time_cell(r),
                     memory_cell(r), cell(m.get("ttft_s"), "s"), cell(m.get("decode_tokens_per_second"), "tok/s"),
                     early_exit_cell(r.early_exit), cell(m.get("claims")), cell(m.get("citation_validity"), "ratio"),
                     target_cell(r), delta_cell(comparison.for_key(r.key) if comparison is not None else None)])
    return headers, body
