"""Comparisons of two sets of stored runs (pure): per-metric deltas per series, and whether a change is beyond a
threshold AND distinguishable from noise (analysis/stats.py). Metric names, units, directions and which metrics
are deterministic counters (`x-compare: exact`) come from the schemas (harness.records); nothing here keeps its
own list.

Where the two sides have too few runs for the permutation test, the noise estimate may come from the series'
history: its runs on other recent commits of this machine (`history=`, records; the same profile settings).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..records import (ResultRecord, Summary, headline_metrics, is_number, is_usable, metric_specs,
                       series_key, summarize)
from .power import GatePower, gate_power
from .stats import ALPHA, Test, noise_test
from .thresholds import Threshold

#: How many recent other commits of a series the history noise estimate reads.
HISTORY_COMMITS = 10

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
    #: why a change beyond its threshold did not fail: "indicative" (too few runs, test.why says why) or
    #: "noise" (not distinguishable from noise); "" otherwise
    not_failed_because: str = ""
    #: a deterministic counter's distinct values on each side (empty for other metrics)
    base_values: list[float] = field(default_factory=list)
    cur_values: list[float] = field(default_factory=list)
    #: what the gate could have caught with these runs (analysis/power.py): thresholded metrics that did not fail
    power: GatePower | None = None

    @property
    def indicative(self) -> bool:
        return self.test.method == "indicative"

    @property
    def gate_change_pct(self) -> float | None:
        """The change the gate holds against the threshold: the noise test's own estimate (spike-trimmed mean of
        log values) where it made one, else the medians' change."""
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

    @property
    def any(self) -> bool:
        return bool(self.profile_differs or self.dirty_current or self.memray_traced or self.contended_base
                    or self.contended_cur)


@dataclass
class SeriesComparison:
    key: str                         # records.series_key
    bench: str
    profile: str | None
    deltas: list[MetricDelta]
    conditions: Conditions = field(default_factory=Conditions)

    @property
    def n_base(self) -> int:
        return max((d.base.n for d in self.deltas), default=0)

    @property
    def n_cur(self) -> int:
        return max((d.cur.n for d in self.deltas), default=0)

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
    if base is None or cur is None:
        return None
    if base != 0:
        return (cur - base) / abs(base) * 100.0
    return 0.0 if cur == 0 else None


def direction_of(delta: float | None, better: str) -> str:
    """worse | better | same | n/a, per the metric's better direction."""
    if delta is None:
        return "n/a"
    if delta == 0:
        return "same"
    if better not in ("lower", "higher"):
        return "n/a"
    return "worse" if (delta > 0) == (better == "lower") else "better"


def compare_metric(name: str, spec: dict, base_vals: Sequence[float], cur_vals: Sequence[float],
                   threshold: Threshold | None = None, seed: int = 0,
                   history: Sequence[Sequence[float]] | None = None, alpha: float = ALPHA,
                   power: bool = True) -> MetricDelta:
    """One metric of one series. `history`: the series' values on other recent commits, one list per commit
    (the noise estimate where the two sides have too few runs); `alpha`: the noise test's level (lower for one
    look of a sequential comparison, analysis/sequential.py); `power`: estimate what the gate could have caught
    (a simulation, analysis/power.py: worth it only for a comparison that is shown)."""
    base = [float(x) for x in base_vals if is_number(x)]
    cur = [float(x) for x in cur_vals if is_number(x)]
    b, c = summarize(base), summarize(cur)
    better = spec.get("x-better", "none")
    exact = spec.get("x-compare") == "exact"
    delta = relative_change(b.median, c.median)
    change = direction_of(delta, better)
    worse_side = {"lower": "greater", "higher": "less"}.get(better)
    test = (noise_test(base, cur, seed=seed, history=history, exact=exact, worse=worse_side, alpha=alpha)
            if b.n and c.n else Test("none", None))
    values: tuple[list[float], list[float]] = ([], [])
    if exact and b.n and c.n:
        values = (sorted(set(base)), sorted(set(cur)))
        if values[0] != values[1]:
            change = "changed"          # a deterministic counter moved: never noise, whatever its direction
    # The gate: the change for the worse beyond the threshold by the test's own estimate (the medians' change
    # where the test made none), and beyond noise by the one-sided test.
    gate_delta = test.change_pct if test.change_pct is not None else delta
    worse = direction_of(gate_delta, better) == "worse"
    failed, why = False, ""
    if threshold is not None and worse and gate_delta is not None and abs(gate_delta) > threshold.pct:
        if test.worse_significant:      # one-sided toward worse: the gate fails only a change for the worse
            failed = True
        else:
            why = "indicative" if test.method == "indicative" else "noise"
    gp = None
    if power and threshold is not None and worse_side and not failed and test.method in ("permutation", "history"):
        # for a fixed number of rounds (--research-rounds N): at the full alpha, whatever this look's
        gp = gate_power(base, cur, threshold.pct, worse=worse_side, history=history or (), seed=seed)
    return MetricDelta(name, spec.get("x-label") or name, spec.get("x-unit", ""), better, b, c, delta, change,
                       test, threshold, failed, why, *values, power=gp)


def compare_records(baseline: Sequence[ResultRecord], current: Sequence[ResultRecord], *,
                    thresholds: Sequence[Threshold] = (), metrics: Sequence[str] | None = None,
                    baseline_name: str = "baseline", current_name: str = "current",
                    specs: dict[str, dict] | None = None, key: Callable[[ResultRecord], str] = series_key,
                    seed: int = 0, history: Sequence[ResultRecord] = (), alpha: float = ALPHA,
                    power: bool = True) -> Comparison:
    """Compare the usable runs of each series present on both sides.

    metrics: which to compare (default: the schema's headline metrics, the deterministic counters, plus every
    thresholded one). history: stored records of other commits on the same machine (the current side's own
    records are left out), for the noise estimate where the sides have too few runs. alpha: the noise tests'
    level (one look of a sequential comparison tests at less, analysis/sequential.py). power: estimate, for
    gated metrics that did not fail, what the gate could have caught (off for comparisons nobody reads)."""
    specs = specs if specs is not None else metric_specs("telemetry")
    names = list(metrics) if metrics is not None else headline_metrics("telemetry") + [
        n for n, s in specs.items() if s.get("x-compare") == "exact" and n not in headline_metrics("telemetry")]
    for t in thresholds:
        if t.metric not in names:
            names.append(t.metric)
    by_t = {t.metric: t for t in thresholds}

    def group(recs: Sequence[ResultRecord]) -> dict[str, list[ResultRecord]]:
        out: dict[str, list[ResultRecord]] = {}
        for r in recs:
            if is_usable(r):
                out.setdefault(key(r), []).append(r)
        return out

    gb, gc = group(baseline), group(current)
    cur_ids = {r.record_id for r in current}
    gh = group([r for r in history if r.record_id not in cur_ids])
    series = []
    for k in sorted(set(gb) & set(gc)):
        brs, crs = gb[k], gc[k]
        hist = _recent_by_commit(gh.get(k, []), {_profile_digest(r) for r in crs})
        deltas = [compare_metric(n, specs.get(n, {}), [r.metric(n) for r in brs if is_number(r.metric(n))],
                                 [r.metric(n) for r in crs if is_number(r.metric(n))], by_t.get(n), seed,
                                 history=[[r.metric(n) for r in rs if is_number(r.metric(n))] for rs in hist],
                                 alpha=alpha, power=power)
                  for n in names]
        bprof = {_profile_digest(r) for r in brs} - {None}
        cprof = {_profile_digest(r) for r in crs} - {None}
        cond = Conditions(
            profile_differs=bool(bprof and cprof and bprof != cprof),
            dirty_current=any(r.dirty for r in crs) and not any(r.dirty for r in brs),
            memray_traced=sum(1 for r in [*brs, *crs] if (r.extra or {}).get("memray_capture")),
            contended_base=sum(1 for r in brs if (r.extra or {}).get("contended")),
            contended_cur=sum(1 for r in crs if (r.extra or {}).get("contended")),
            n_base=len(brs), n_cur=len(crs))
        series.append(SeriesComparison(k, crs[-1].bench, crs[-1].profile, deltas, cond))
    attempted = {key(r) for r in current}     # series this session ran, usable or not
    return Comparison(baseline_name, current_name, series, list(thresholds),
                      sorted((set(gb) - set(gc)) & attempted), sorted(set(gc) - set(gb)))


def _profile_digest(rec: ResultRecord) -> str | None:
    return (rec.extra or {}).get("profile_digest")


def _recent_by_commit(recs: Sequence[ResultRecord], digests: set) -> list[list[ResultRecord]]:
    """A series' history records on the current profile settings, grouped by commit (a dirty tree apart), the
    HISTORY_COMMITS most recent commits."""
    by: dict[tuple, list[ResultRecord]] = {}
    for r in recs:
        if digests - {None} and _profile_digest(r) not in digests:
            continue
        by.setdefault((r.commit, bool(r.dirty)), []).append(r)
    newest = sorted(by.values(), key=lambda rs: max(r.timestamp for r in rs), reverse=True)
    return newest[:HISTORY_COMMITS]
