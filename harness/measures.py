"""Measured values of stored records, with their specs: what the report, the exports and the recommendations read.

Names, units and directions come from the schemas, never from a list kept here:
- run metrics:        schemas/telemetry.schema.json (record.telemetry["metrics"]),
- quality metrics:    schemas/quality.schema.json   (record.extra["quality"]["metrics"]),
- breakdown metrics:  schemas/breakdown.schema.json (record.extra["breakdown"]["metrics"]).
A name in a record that no schema describes is still shown, with unit "" and direction "none".
"""
from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Sequence

from llm_research_bench.harness.store import ResultRecord

#: Outcomes whose numbers are measurements (a failed bench still measured the run: it missed its budget).
MEASURED_OUTCOMES = ("passed", "failed")
EXTRA_SOURCES = ("quality", "breakdown")


@lru_cache(maxsize=1)
def all_specs() -> dict[str, dict]:
    """Metric name -> spec (x-unit, x-better, x-label, description, plus `source`) over every schema."""
    from llm_research_bench.engine.telemetry import metric_specs as telemetry_specs
    from llm_research_bench.harness import breakdown, quality

    out: dict[str, dict] = {}
    for source, specs in (("telemetry", telemetry_specs()), ("quality", quality.metric_specs()),
                          ("breakdown", breakdown.metric_specs())):
        for name, spec in specs.items():
            if name in out:
                raise ValueError(f"metric '{name}' is defined by both {out[name]['source']} and {source} schemas")
            out[name] = {**spec, "source": source}
    return out


def spec(name: str) -> dict:
    return all_specs().get(name, {"x-unit": "", "x-better": "none", "source": "record"})


def unit(name: str) -> str:
    return spec(name).get("x-unit", "")


def better(name: str) -> str:
    return spec(name).get("x-better", "none")


def label(name: str) -> str:
    return spec(name).get("x-label") or name


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def record_values(rec: ResultRecord) -> dict[str, float]:
    """Every numeric metric a record carries: its run telemetry's metrics, then its quality/breakdown metrics.

    A quality/breakdown record whose telemetry is one representative run of many (extra
    'representative_telemetry': true) contributes its own metrics only: that run's telemetry stays in the record
    for inspection but is not charted or exported as if it were the bench's measurement."""
    out: dict[str, float] = {}
    tel_metrics = {} if (rec.extra or {}).get("representative_telemetry") else ((rec.telemetry or {}).get("metrics") or {})
    for k, v in tel_metrics.items():
        x = _num(v)
        if x is not None:
            out[k] = x
    for src in EXTRA_SOURCES:
        for k, v in (((rec.extra or {}).get(src) or {}).get("metrics") or {}).items():
            x = _num(v)
            if x is not None:
                out[k] = x
    out.update(efficiency_values(rec))
    return out


#: extra['efficiency'] (benches/test_engine_efficiency.py, harness.efficiency) -> breakdown metric names: its
#: numbers are reused, not measured twice. Per-round fields are reduced with the median, as that bench does.
EFFICIENCY_MAP = {"decode_ratio_median": "engine_vs_raw_decode_ratio", "wall_decode_ratio_median": "engine_vs_raw_wall_ratio"}
EFFICIENCY_ROUND_MAP = {"raw_decode_tps": "raw_decode_tokens_per_second",
                        "engine_decode_tps": "engine_decode_tokens_per_second"}


def efficiency_values(rec: ResultRecord) -> dict[str, float]:
    eff = (rec.extra or {}).get("efficiency")
    if not isinstance(eff, dict):
        return {}
    out = {}
    for src, dst in EFFICIENCY_MAP.items():
        x = _num(eff.get(src))
        if x is not None:
            out[dst] = x
    rounds = [r for r in eff.get("rounds") or [] if isinstance(r, dict)]
    for src, dst in EFFICIENCY_ROUND_MAP.items():
        vals = [v for v in (_num(r.get(src)) for r in rounds) if v is not None]
        if vals:
            out[dst] = statistics.median(vals)
    return out


def record_bounds(rec: ResultRecord) -> dict[str, tuple[float, float]]:
    """Per-metric [lower, upper] a record states itself (e.g. an accuracy's 95 % interval)."""
    out = {}
    for src in EXTRA_SOURCES:
        for k, b in (((rec.extra or {}).get(src) or {}).get("bounds") or {}).items():
            if isinstance(b, (list, tuple)) and len(b) == 2 and all(_num(x) is not None for x in b):
                out[k] = (float(b[0]), float(b[1]))
    return out


def is_measurement(rec: ResultRecord) -> bool:
    return rec.outcome in MEASURED_OUTCOMES and not rec.warmup and bool(record_values(rec))


def series_name(rec: ResultRecord) -> str:
    """A stable name for a record's series: the bench and its profile ('research[quick]')."""
    return f"{rec.bench}[{rec.profile}]" if rec.profile else rec.bench


def current_machine(records: Sequence[ResultRecord]) -> str | None:
    """The machine of the newest record: 'this machine' for history plots and exports."""
    if not records:
        return None
    return max(records, key=lambda r: r.timestamp).machine_fingerprint


def on_machine(records: Iterable[ResultRecord], fingerprint: str | None) -> list[ResultRecord]:
    return [r for r in records if fingerprint is None or r.machine_fingerprint == fingerprint]


def commit_order(records: Iterable[ResultRecord]) -> list[str]:
    """Commits in the order they were first measured (records without a commit form 'nocommit')."""
    first: dict[str, str] = {}
    for r in records:
        c = commit_key(r)
        if c not in first or r.timestamp < first[c]:
            first[c] = r.timestamp
    return sorted(first, key=lambda c: first[c])


def commit_key(rec: ResultRecord) -> str:
    c = (rec.commit or "nocommit")[:12]
    return c + ("+dirty" if rec.dirty else "")


def latest_commit_records(records: Sequence[ResultRecord]) -> dict[str, list[ResultRecord]]:
    """Series name -> the measured records of that series' newest commit."""
    by_series: dict[str, list[ResultRecord]] = defaultdict(list)
    for r in records:
        if is_measurement(r):
            by_series[series_name(r)].append(r)
    out = {}
    for name, recs in by_series.items():
        last = commit_order(recs)[-1]
        out[name] = [r for r in recs if commit_key(r) == last]
    return out


@dataclass
class Point:
    """One commit of one metric of one series: its values, their median, and the budget band."""
    commit: str
    values: list[float]
    timestamp: str
    band: tuple[float | None, float | None] | None = None
    failed: int = 0                       # records of this commit that missed their target
    fails: list[bool] = field(default_factory=list)   # per value: did that run miss its target
    regression: str | None = None         # why this commit is marked as a regression
    improvement: str | None = None
    indicative: bool = False              # the mark rests on one run on a side (no noise test)

    @property
    def median(self) -> float:
        return statistics.median(self.values)


def budget_band(rec: ResultRecord, metric: str) -> tuple[float | None, float | None] | None:
    """The budget band a record was held to for this metric: time band for execution time, memory limit for
    the memory peak (from record.budget, as the harness stored it)."""
    b = rec.budget or {}
    if metric == "execution_time_s" and (b.get("time_lower_s") is not None or b.get("time_upper_s") is not None):
        return (b.get("time_lower_s"), b.get("time_upper_s"))
    if metric == "memory_peak_mb" and b.get("memory_mb") is not None:
        return (None, b.get("memory_mb"))
    return None


def mad(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    m = statistics.median(values)
    return statistics.median(abs(v - m) for v in values)


def mark_changes(points: list[Point], direction: str, *, rel_threshold: float = 0.05) -> None:
    """Mark each commit whose median moved the wrong way (regression) or the right way (improvement) against the
    previous commit by more than rel_threshold, when harness.compare's noise test (the one --compare-fail uses:
    Mann-Whitney U, a bootstrap interval, or exact for spread-free values) says the change is real. With one
    run on a side there are no statistics: the mark is then 'indicative' (drawn hollow)."""
    if direction not in ("lower", "higher"):
        return
    from llm_research_bench.harness.compare import noise_test

    for prev, cur in zip(points, points[1:]):
        pm, cm = prev.median, cur.median
        delta = cm - pm
        if abs(delta) <= abs(pm) * rel_threshold or delta == 0:
            continue
        test = noise_test(prev.values, cur.values)
        if test.significant is False:
            continue
        indicative = test.significant is None
        rel = f"{delta / pm:+.1%}" if pm else f"{delta:+.4g}"
        how = ("indicative: one run on a side, no noise test" if indicative else
               f"{test.method}" + (f" p = {test.p_value:.3g}" if test.p_value is not None else "")
               + (f", 95% CI of the change {test.ci_pct[0]:+.1f}..{test.ci_pct[1]:+.1f} %" if test.ci_pct else ""))
        why = f"median {pm:.4g} -> {cm:.4g} ({rel}) vs {prev.commit}, beyond {rel_threshold:.0%}; {how}"
        worse = delta > 0 if direction == "lower" else delta < 0
        if worse:
            cur.regression = why
        else:
            cur.improvement = why
        cur.indicative = indicative


def history(records: Sequence[ResultRecord], series: str, metric: str) -> list[Point]:
    """The metric's points across commits (oldest first) for one series, regressions marked."""
    recs = [r for r in records if is_measurement(r) and series_name(r) == series and metric in record_values(r)]
    points = []
    for c in commit_order(recs):
        rs = [r for r in recs if commit_key(r) == c]
        bands = [b for b in (budget_band(r, metric) for r in rs) if b]
        points.append(Point(c, [record_values(r)[metric] for r in rs], min(r.timestamp for r in rs),
                            bands[-1] if bands else None, sum(1 for r in rs if not r.target_met),
                            [not r.target_met for r in rs]))
    mark_changes(points, better(metric))
    return points


@dataclass
class Summary:
    """One metric of one series at its newest commit."""
    series: str
    metric: str
    median: float
    lower: float
    upper: float
    n: int
    commit: str
    bounds: tuple[float, float] | None = None      # a record's own interval (e.g. a Wilson CI)
    extra: dict = field(default_factory=dict)


def latest_summaries(records: Sequence[ResultRecord]) -> list[Summary]:
    """For every series, every metric of its newest commit: median, min and max over that commit's records."""
    out = []
    for series, recs in sorted(latest_commit_records(records).items()):
        names: dict[str, list[float]] = defaultdict(list)
        for r in recs:
            for k, v in record_values(r).items():
                names[k].append(v)
        for k, vs in names.items():
            b = [record_bounds(r).get(k) for r in recs]
            b = [x for x in b if x]
            out.append(Summary(series, k, statistics.median(vs), min(vs), max(vs), len(vs), commit_key(recs[0]),
                               b[-1] if b else None))
    return out
