"""Change points of one series' commit-ordered history (pure): candidate steps from PELT (`ruptures`), each kept only
when the gate (compare.compare_metric) fails the runs after it against the runs before."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..records import ResultRecord, headline_metrics, metric_specs, series_key
from .compare import compare_metric
from .measures import Point, history, is_measurement
from .names import DEFAULT_PCT, Threshold, parse_threshold

#: PELT's cost (l1: robust to a spike), its penalty in log(n) noise scales, the shortest segment in runs; the
#: confirmation reads at most WINDOW commits a side.
MODEL, PENALTY, MIN_SIZE, WINDOW = "l1", 2.0, 2, 5


@dataclass
class Step:
    """A confirmed (or rejected) step of one metric of one series: the first commit after it, the runs either side."""
    series: str
    metric: str
    index: int                     # the point (commit) the step starts at
    commit: str
    previous_commit: str
    before: float                  # median of the runs before (up to WINDOW commits)
    after: float                   # median of the runs after
    change_pct: float | None       # the gate's estimate
    p: float | None                # the noise test's one-sided p toward worse
    method: str                    # the noise test
    timestamp: str                 # when the step's first commit was measured
    n_before: int
    n_after: int
    confirmed: bool                # the gate fails the runs after against the runs before
    machine: str = ""


def pelt(values: Sequence[float], penalty: float = PENALTY, model: str = MODEL) -> list[int]:
    """The first index after each change PELT finds: `penalty` x log(n) noise scales (l1) or variances (l2) a change,
    the noise read from successive differences."""
    import ruptures
    v = np.asarray(values, dtype=float)
    if v.size < 2 * MIN_SIZE or np.ptp(v) == 0:
        return []
    sigma = max(float(np.median(np.abs(np.diff(v)))) / (0.6745 * math.sqrt(2)), 1e-9 * max(np.abs(v).max(), 1.0))
    pen = penalty * math.log(v.size) * (sigma if model == "l1" else sigma ** 2)
    return [int(i) for i in ruptures.Pelt(model=model, min_size=MIN_SIZE, jump=1).fit(v).predict(pen=pen)[:-1]]


def commit_cuts(points: Sequence[Point], detect: Callable[[Sequence[float]], list[int]] = pelt) -> list[int]:
    """Candidate steps (point indices >= 1): `detect` on every run's log value, moved to the nearest commit boundary."""
    raw = [v for p in points for v in p.values]
    values = np.log(raw) if all(v > 0 for v in raw) else np.asarray(raw, dtype=float)
    starts = np.cumsum([0, *(len(p.values) for p in points)])[:-1]
    cuts = {int(np.argmin(np.abs(starts - k))) for k in detect(values)}
    return sorted(c for c in cuts if 1 <= c < len(points))


def confirm(points: Sequence[Point], cuts: Sequence[int], *, series: str, metric: str, threshold: Threshold,
            spec: dict | None = None) -> list[Step]:
    """Each cut judged by the gate: the runs of up to WINDOW commits before it against those after it, bounded
    by the steps kept so far, the largest confirmed change kept first (so that a cut beside a real step, whose
    window straddles it, is judged against it), with the whole history as the noise test's fallback."""
    kept: list[int] = []
    while True:
        judged = _judge(points, [c for c in cuts if c not in kept], sorted([0, *kept, len(points)]), series,
                        metric, threshold, spec)
        ok = [s for s in judged if s.confirmed]
        if not ok:
            break
        kept.append(max(ok, key=lambda s: abs(s.change_pct or 0.0)).index)
    final = _judge(points, cuts, sorted([0, *kept, len(points)]), series, metric, threshold, spec)
    return [dataclasses.replace(s, confirmed=s.confirmed and s.index in kept) for s in final]


def _judge(points, cuts, bounds, series, metric, threshold, spec) -> list[Step]:
    """The gate's word on each cut, its windows ending at the nearest `bounds` (point indices) either side."""
    history = [p.values for p in points]
    out = []
    for c in cuts:
        lo = max(max(b for b in bounds if b < c), c - WINDOW)
        hi = min(min(b for b in bounds if b > c), c + WINDOW)
        before = [v for p in points[lo:c] for v in p.values]
        after = [v for p in points[c:hi] for v in p.values]
        d = compare_metric(metric, spec or {"x-better": threshold.better}, before, after, threshold=threshold,
                           history=history)
        out.append(Step(series, metric, c, points[c].commit, points[c - 1].commit, d.base.median, d.cur.median,
                        d.gate_change_pct, d.test.p_worse, d.test.method, points[c].timestamp, len(before),
                        len(after), d.failed))
    return out


def find_steps(points: Sequence[Point], *, series: str, metric: str, threshold: Threshold, spec: dict | None = None,
               detect: Callable[[Sequence[float]], list[int]] = pelt) -> list[Step]:
    """The confirmed steps for the worse of one metric's history (oldest point first)."""
    if len(points) < 2:
        return []
    return [s for s in confirm(points, commit_cuts(points, detect), series=series, metric=metric, threshold=threshold,
                               spec=spec) if s.confirmed]


def default_thresholds(specs: Sequence[str] = ()) -> list[Threshold]:
    """METRIC[:PCT] specs as Thresholds (default: the headline metrics with a direction); ValueError for a bad one."""
    if not specs:
        known = metric_specs("telemetry")
        specs = [m for m in headline_metrics("telemetry") if known.get(m, {}).get("x-better") in ("lower", "higher")]
    return [parse_threshold(m if ":" in m else f"{m}:{DEFAULT_PCT:g}%") for m in specs]


def history_steps(records: Sequence[ResultRecord], thresholds: Sequence[Threshold], *,
                  git_order: Sequence[str] | None = None) -> list[Step]:
    """The confirmed steps of every machine x series x thresholded metric in the clean-tree history."""
    specs = metric_specs("telemetry")
    out = []
    for fp in sorted({r.machine_fingerprint for r in records}):
        mine = [r for r in records if r.machine_fingerprint == fp and not r.dirty and is_measurement(r)]
        for series in sorted({series_key(r) for r in mine}):
            for t in thresholds:
                pts = history(mine, series, t.metric, git_order)
                out += [dataclasses.replace(s, machine=fp) for s in
                        find_steps(pts, series=series, metric=t.metric, threshold=t, spec=specs.get(t.metric))]
    return out
