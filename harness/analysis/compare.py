"""Comparisons of two sets of stored runs (pure): per-metric deltas per series, and the gate (stats.gate_decision)
on each thresholded metric; names, units, directions and deterministic counters come from the schemas."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

from ..records import (ResultRecord, Summary, headline_metrics, is_contended, is_number, is_usable, metric_specs,
                       series_key, summarize)
from .baseline import profile_digest
from .power import GatePower, gate_power
from .session import RateDelta, compare_rates
from .stats import ALPHA, WORSE, Test, beyond, gate_decision, noise_test
from .thresholds import Threshold

#: How many recent other commits of a series the history noise estimate reads.
HISTORY_COMMITS = 10


@dataclass
class Samples:
    """The values a metric's noise test read: each side's, and the series' on recent other commits."""
    base: list[float]
    cur: list[float]
    history: list[list[float]] = field(default_factory=list)


@dataclass
class MetricDelta:
    metric: str
    label: str
    unit: str
    better: str                      # lower | higher | none
    base: Summary
    cur: Summary
    delta_pct: float | None          # (cur median - base median) / |base median| * 100
    change: str                      # worse | better | same | changed (a deterministic counter) | n/a
    test: Test
    threshold: Threshold | None = None
    failed: bool = False
    not_failed_because: str = ""     # a change beyond its threshold that did not fail: indicative | noise
    base_values: list[float] = field(default_factory=list)     # a deterministic counter's distinct values
    cur_values: list[float] = field(default_factory=list)
    power: GatePower | None = None   # what the gate could have caught (add_power): gated metrics that did not fail
    samples: Samples | None = None

    @property
    def indicative(self) -> bool:
        return self.test.method == "indicative"

    @property
    def verdict(self) -> str:
        """The gate's word on a gated metric: FAIL, no baseline, indicative or ok; '' for a metric without one."""
        if self.threshold is None:
            return ""
        if self.failed or not self.base.n:
            return "FAIL" if self.failed else "no baseline"
        return "indicative" if self.indicative else "ok"

    @property
    def gate_change_pct(self) -> float | None:
        """The change the gate holds against the threshold: the test's estimate, else the medians' change."""
        return self.test.change_pct if self.test.change_pct is not None else self.delta_pct


@dataclass
class Conditions:
    """What makes a series' comparison less trustworthy (report/comparison.py says it in words)."""
    profile_differs: bool = False           # the profile settings differ from the baseline's
    dirty_current: bool = False             # current runs come from a dirty tree, the baseline's did not
    memray_traced: int = 0                  # runs traced by memray (inflated timings)
    contended_base: int = 0                 # runs timed while other processes held the CPUs
    contended_cur: int = 0
    n_base: int = 0
    n_cur: int = 0


@dataclass
class SeriesComparison:
    key: str                         # records.series_key
    bench: str
    profile: str | None
    deltas: list[MetricDelta]
    conditions: Conditions = field(default_factory=Conditions)

    def delta(self, metric: str) -> MetricDelta | None:
        return next((d for d in self.deltas if d.metric == metric), None)


@dataclass
class Comparison:
    baseline: str                    # what the baseline is (e.g. 'a1b2c3d4e5f6')
    current: str
    series: list[SeriesComparison]
    thresholds: list[Threshold] = field(default_factory=list)
    only_in_baseline: list[str] = field(default_factory=list)   # ran now, but no usable run (failed, timed out)
    only_in_current: list[str] = field(default_factory=list)    # no usable baseline run
    rates: list[RateDelta] = field(default_factory=list)        # the seed's rates per bench x profile (session.py)

    @property
    def regressions(self) -> list[tuple[SeriesComparison, MetricDelta]]:
        """The (series, metric) pairs that failed their compare-fail threshold."""
        return [(s, d) for s in self.series for d in s.deltas if d.failed]

    @property
    def failed(self) -> bool:
        return bool(self.regressions)

    def for_key(self, key: str) -> SeriesComparison | None:
        return next((s for s in self.series if s.key == key), None)


def relative_change(base: float | None, cur: float | None) -> float | None:
    """(cur - base) / |base| in percent; 0 when both are 0; None when undefined."""
    if base is None or cur is None or (base == 0 and cur != 0):
        return None
    return (cur - base) / abs(base) * 100.0 if base != 0 else 0.0


def direction_of(delta: float | None, better: str) -> str:
    """worse | better | same | n/a, per the metric's better direction."""
    if delta is None or (delta != 0 and better not in WORSE):
        return "n/a"
    return "same" if delta == 0 else "worse" if (delta > 0) == (better == "lower") else "better"


def compare_metric(name: str, spec: dict, base_vals: Sequence[float], cur_vals: Sequence[float], *,
                   threshold: Threshold | None = None, history: Sequence[Sequence[float]] | None = None,
                   alpha: float = ALPHA) -> MetricDelta:
    """One metric of one series; `history`: its values on other recent commits, one list per commit."""
    base, cur = ([float(x) for x in xs if is_number(x)] for xs in (base_vals, cur_vals))
    b, c = summarize(base), summarize(cur)
    better, exact = spec.get("x-better", "none"), spec.get("x-compare") == "exact"
    worse = WORSE.get(better)
    delta = relative_change(b.median, c.median)
    test = (noise_test(base, cur, history=history, exact=exact, worse=worse, alpha=alpha)
            if b.n and c.n else Test("none", None))
    values = (sorted(set(base)), sorted(set(cur))) if exact and b.n and c.n else ([], [])
    change = "changed" if values[0] != values[1] else direction_of(delta, better)   # a counter moved: never noise
    d = MetricDelta(name, spec.get("x-label") or name, spec.get("x-unit", ""), better, b, c, delta, change, test,
                    threshold, False, "", *values, samples=Samples(base, cur, [list(h) for h in history or ()]))
    if threshold is not None and worse and beyond(d.gate_change_pct, threshold.pct, worse):
        d.failed = bool(gate_decision(d.gate_change_pct, test.worse_significant, threshold.pct, worse))
        d.not_failed_because = "" if d.failed else "indicative" if d.indicative else "noise"
    return d


def compare_records(baseline: Sequence[ResultRecord], current: Sequence[ResultRecord], *,
                    thresholds: Sequence[Threshold] = (), metrics: Sequence[str] | None = None,
                    names: tuple[str, str] = ("baseline", "current"), specs: dict[str, dict] | None = None,
                    history: Sequence[ResultRecord] = (), alpha: float = ALPHA) -> Comparison:
    """Compare the usable runs of each series on both sides (the seed's rates: every measured run). metrics: default
    the headline metrics and deterministic counters, plus every thresholded one; history: other commits' records."""
    specs = specs if specs is not None else metric_specs("telemetry")
    wanted = list(metrics) if metrics is not None else [
        *headline_metrics("telemetry"), *(n for n, s in specs.items() if s.get("x-compare") == "exact")]
    wanted = list(dict.fromkeys([*wanted, *(t.metric for t in thresholds)]))
    by_t = {t.metric: t for t in thresholds}
    gb, gc = _by_series(baseline), _by_series(current)
    cur_ids = {r.record_id for r in current}
    gh = _by_series([r for r in history if r.record_id not in cur_ids])
    series = []
    for k in sorted(set(gb) & set(gc)):
        brs, crs = gb[k], gc[k]
        hist = _recent_by_commit(gh.get(k, []), {profile_digest(r) for r in crs})
        deltas = [compare_metric(n, specs.get(n, {}), _values(brs, n), _values(crs, n), threshold=by_t.get(n),
                                 history=[_values(rs, n) for rs in hist], alpha=alpha) for n in wanted]
        series.append(SeriesComparison(k, crs[-1].bench, crs[-1].profile, deltas, _conditions(brs, crs)))
    attempted = {series_key(r) for r in current}     # series this session ran, usable or not
    return Comparison(*names, series, list(thresholds), sorted((set(gb) - set(gc)) & attempted),
                      sorted(set(gc) - set(gb)), compare_rates(baseline, current, alpha))


def add_power(comp: Comparison, seed: int = 0) -> Comparison:
    """Fill in MetricDelta.power (a simulation, for a comparison that is shown) of every gated metric not failed."""
    for d in (d for s in comp.series for d in s.deltas):
        worse = WORSE.get(d.better)
        if d.threshold and worse and not d.failed and d.test.method in ("permutation", "history"):
            d.power = gate_power(d.samples.base, d.samples.cur, d.threshold.pct, worse=worse,
                                 history=d.samples.history, seed=seed)
    return comp


def _by_series(recs: Sequence[ResultRecord]) -> dict[str, list[ResultRecord]]:
    out: dict[str, list[ResultRecord]] = defaultdict(list)
    for r in filter(is_usable, recs):
        out[series_key(r)].append(r)
    return out


def _values(recs: Sequence[ResultRecord], metric: str) -> list:
    return [r.metric(metric) for r in recs if is_number(r.metric(metric))]


def _conditions(brs: Sequence[ResultRecord], crs: Sequence[ResultRecord]) -> Conditions:
    bprof, cprof = {profile_digest(r) for r in brs} - {None}, {profile_digest(r) for r in crs} - {None}
    return Conditions(profile_differs=bool(bprof and cprof and bprof != cprof),
                      dirty_current=any(r.dirty for r in crs) and not any(r.dirty for r in brs),
                      memray_traced=sum(1 for r in [*brs, *crs] if (r.extra or {}).get("memray_capture")),
                      contended_base=sum(map(is_contended, brs)), contended_cur=sum(map(is_contended, crs)),
                      n_base=len(brs), n_cur=len(crs))


def _recent_by_commit(recs: Sequence[ResultRecord], digests: set) -> list[list[ResultRecord]]:
    """A series' history records on the current profile settings by commit (a dirty tree apart), the most recent."""
    by: dict[tuple, list[ResultRecord]] = {}
    for r in recs:
        if not (digests - {None}) or profile_digest(r) in digests:
            by.setdefault((r.commit, bool(r.dirty)), []).append(r)
    return sorted(by.values(), key=lambda rs: max(r.timestamp for r in rs), reverse=True)[:HISTORY_COMMITS]
