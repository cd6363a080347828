"""Measured values of stored records by series and commit (pure): what the report, the exports and the
recommendations read. Names, units and directions come from the schemas, never from a list kept here."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..records import ResultRecord, Summary, better, is_number, is_usable, series_key, summarize
from .stats import Test, group_by, noise_test

EXTRA_SOURCES = ("quality", "breakdown")
#: extra['efficiency'] (benches/test_engine_efficiency.py) -> breakdown metric names; per-round fields' medians.
EFFICIENCY_MAP = {"decode_ratio_median": "engine_vs_raw_decode_ratio",
                  "wall_decode_ratio_median": "engine_vs_raw_wall_ratio"}
EFFICIENCY_ROUND_MAP = {"raw_decode_tps": "raw_decode_tokens_per_second",
                        "engine_decode_tps": "engine_decode_tokens_per_second"}
#: A history chart marks a commit whose median moved by more than this share from the previous commit's.
CHANGE_THRESHOLD = 0.05


def _numbers(values: dict) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if is_number(v)}


def record_values(rec: ResultRecord) -> dict[str, float]:
    """A record's numeric metrics: telemetry (unless representative of many), quality, breakdown, efficiency."""
    extra = rec.extra or {}
    out = {} if extra.get("representative_telemetry") else _numbers((rec.telemetry or {}).get("metrics") or {})
    for src in EXTRA_SOURCES:
        out.update(_numbers((extra.get(src) or {}).get("metrics") or {}))
    return {**out, **efficiency_values(rec)}


def efficiency_values(rec: ResultRecord) -> dict[str, float]:
    eff = (rec.extra or {}).get("efficiency")
    if not isinstance(eff, dict):
        return {}
    rounds = [r for r in eff.get("rounds") or [] if isinstance(r, dict)]
    per_round = {dst: [float(r[src]) for r in rounds if is_number(r.get(src))]
                 for src, dst in EFFICIENCY_ROUND_MAP.items()}
    return {**_numbers({dst: eff.get(src) for src, dst in EFFICIENCY_MAP.items()}),
            **{k: statistics.median(v) for k, v in per_round.items() if v}}


def record_bounds(rec: ResultRecord) -> dict[str, tuple[float, float]]:
    """Per-metric [lower, upper] a record states itself (e.g. an accuracy's 95 % interval)."""
    bounds = [((rec.extra or {}).get(src) or {}).get("bounds") or {} for src in EXTRA_SOURCES]
    return {k: (float(b[0]), float(b[1])) for d in bounds for k, b in d.items()
            if isinstance(b, (list, tuple)) and len(b) == 2 and all(is_number(x) for x in b)}


def is_measurement(rec: ResultRecord) -> bool:
    """A usable record that carries at least one number."""
    return is_usable(rec) and bool(record_values(rec))


def current_machine(records: Sequence[ResultRecord]) -> str | None:
    """The machine of the newest record: 'this machine' for history plots and exports."""
    return max(records, key=lambda r: r.timestamp).machine_fingerprint if records else None


def on_machine(records: Iterable[ResultRecord], fingerprint: str | None) -> list[ResultRecord]:
    return [r for r in records if fingerprint is None or r.machine_fingerprint == fingerprint]


def commit_key(rec: ResultRecord) -> str:
    return (rec.commit or "nocommit")[:12] + ("+dirty" if rec.dirty else "")


def commit_order(records: Iterable[ResultRecord], git_order: Sequence[str] | None = None) -> list[str]:
    """Commit keys (a dirty tree's after its commit's) oldest first: by `git_order` (full SHAs) where given, else (and
    after those) by when they were first measured."""
    first, full = {}, {}
    for r in records:
        c = commit_key(r)
        full[c] = r.commit
        first[c] = min(first.get(c, r.timestamp), r.timestamp)
    rank = {sha: i for i, sha in enumerate(git_order or ())}

    def key(c: str) -> tuple:
        i = rank.get(full[c] or "", len(rank))
        return (i, first[c] if i == len(rank) else "", c.endswith("+dirty"))
    return sorted(first, key=key if git_order else first.__getitem__)


def latest_commit_records(records: Sequence[ResultRecord],
                          git_order: Sequence[str] | None = None) -> dict[str, list[ResultRecord]]:
    """Series name -> the measured records of that series' newest commit (commit_order's last)."""
    by_series = group_by(filter(is_measurement, records), series_key)
    last = {name: commit_order(recs, git_order)[-1] for name, recs in by_series.items()}
    return {name: [r for r in recs if commit_key(r) == last[name]] for name, recs in by_series.items()}


@dataclass(frozen=True)
class ChangeMark:
    """Why a commit is marked: its median moved beyond the threshold and the noise test did not rule it out."""
    kind: str                             # regression | improvement
    previous_commit: str
    previous_median: float
    median: float
    rel_threshold: float
    test: Test

    @property
    def indicative(self) -> bool:
        return self.test.significant is None


@dataclass
class Point:
    """One commit of one metric of one series: its values, their median, and the budget band."""
    commit: str
    values: list[float]
    timestamp: str
    band: tuple[float | None, float | None] | None = None
    fails: list[bool] = field(default_factory=list)   # per value: did that run miss its target
    change: ChangeMark | None = None      # a regression or improvement against the previous commit

    @property
    def regression(self) -> ChangeMark | None:
        return self.change if self.change and self.change.kind == "regression" else None

    @property
    def improvement(self) -> ChangeMark | None:
        return self.change if self.change and self.change.kind == "improvement" else None

    @property
    def indicative(self) -> bool:
        return bool(self.change and self.change.indicative)

    @property
    def median(self) -> float:
        return statistics.median(self.values)


def budget_band(rec: ResultRecord, metric: str) -> tuple[float | None, float | None] | None:
    """The budget band a record was held to: the time band for execution time, the limit for the memory peak."""
    b = rec.budget or {}
    if metric == "execution_time_s" and (b.get("time_lower_s") is not None or b.get("time_upper_s") is not None):
        return (b.get("time_lower_s"), b.get("time_upper_s"))
    if metric == "memory_peak_mb" and b.get("memory_mb") is not None:
        return (None, b.get("memory_mb"))
    return None


def history(records: Sequence[ResultRecord], series: str, metric: str,
            git_order: Sequence[str] | None = None) -> list[Point]:
    """One series' metric by commit (oldest first), marked where the median moved beyond CHANGE_THRESHOLD, not noise."""
    recs = [r for r in records if is_measurement(r) and series_key(r) == series and metric in record_values(r)]
    points = []
    for c in commit_order(recs, git_order):
        rs = [r for r in recs if commit_key(r) == c]
        bands = [b for b in (budget_band(r, metric) for r in rs) if b]
        points.append(Point(c, [record_values(r)[metric] for r in rs], min(r.timestamp for r in rs),
                            bands[-1] if bands else None, [not r.target_met for r in rs]))
    direction = better(metric)
    if direction not in ("lower", "higher"):
        return points
    for prev, cur in zip(points, points[1:]):
        pm, cm = prev.median, cur.median
        if abs(cm - pm) <= abs(pm) * CHANGE_THRESHOLD or cm == pm:
            continue
        test = noise_test(prev.values, cur.values, history=[p.values for p in points])
        if test.significant is not False:
            kind = "regression" if (cm > pm) == (direction == "lower") else "improvement"
            cur.change = ChangeMark(kind, prev.commit, pm, cm, CHANGE_THRESHOLD, test)
    return points


@dataclass
class SeriesMetric:
    """One metric of one series at its newest commit: its statistics there, and a record's own interval."""
    series: str
    metric: str
    stats: Summary
    commit: str
    bounds: tuple[float, float] | None = None      # a record's own interval (e.g. a Wilson CI)

    @property
    def median(self) -> float:
        return self.stats.median

    @property
    def n(self) -> int:
        return self.stats.n


def metric_values(records: Iterable[ResultRecord]) -> dict[str, list[float]]:
    """Each metric's values over the records (record_values), metrics in the order they first appear."""
    out: dict[str, list[float]] = {}
    for r in records:
        for k, v in record_values(r).items():
            out.setdefault(k, []).append(v)
    return out


def latest_summaries(records: Sequence[ResultRecord]) -> list[SeriesMetric]:
    """For every series, every metric of its newest commit, summarised over that commit's records."""
    out = []
    for series, recs in sorted(latest_commit_records(records).items()):
        bounds = [record_bounds(r) for r in recs]
        for k, values in metric_values(recs).items():
            b = [x[k] for x in bounds if x.get(k)]
            out.append(SeriesMetric(series, k, summarize(values), commit_key(recs[0]), b[-1] if b else None))
    return out
