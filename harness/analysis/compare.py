"""Comparisons of two sets of stored runs (pure): which stored runs are the baseline, per-metric deltas per series,
and the gate (stats.gate_decision) on each thresholded metric; names, units and directions come from the schemas."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ..records import (ResultRecord, Summary, headline_metrics, is_contended, is_number, is_usable, metric_specs,
                       series_key, summarize)
from .names import Threshold
from .session import RateDelta, compare_rates
from .stats import (ALPHA, WORSE, GatePower, Test, beyond, can_decide, change_estimates, gate_batch, gate_decision,
                    gate_power, group_by, noise_test)

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
    """The usable runs of each series compared (metrics: default the headline ones and counters, plus thresholded)."""
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
    """MetricDelta.power of every gated metric not failed (a simulation: only for a comparison shown)."""
    for d in (d for s in comp.series for d in s.deltas):
        worse = WORSE.get(d.better)
        if d.threshold and worse and not d.failed and d.test.method in ("permutation", "history"):
            d.power = gate_power(d.samples.base, d.samples.cur, d.threshold.pct, worse=worse,
                                 history=d.samples.history, seed=seed)
    return comp


def _by_series(recs: Sequence[ResultRecord]) -> dict[str, list[ResultRecord]]:
    return group_by(filter(is_usable, recs), series_key)


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
    by = group_by((r for r in recs if not (digests - {None}) or profile_digest(r) in digests),
                  lambda r: (r.commit, bool(r.dirty)))
    return sorted(by.values(), key=lambda rs: max(r.timestamp for r in rs), reverse=True)[:HISTORY_COMMITS]


def saved_as(rec: ResultRecord) -> str | None:
    return (rec.extra or {}).get("saved_as")


def profile_digest(rec: ResultRecord) -> str | None:
    return (rec.extra or {}).get("profile_digest")


def saved_session(records: Iterable[ResultRecord], name: str) -> list[ResultRecord]:
    """The records of the newest session saved under `name` (a name may be saved again; the newest wins)."""
    named = [r for r in records if saved_as(r) == name]
    sid = (max(named, key=lambda r: r.timestamp).extra or {}).get("session_id") if named else None
    return [r for r in named if (r.extra or {}).get("session_id") == sid]


def latest_other_commit(records: Iterable[ResultRecord], *, current_commit: str | None,
                        fingerprint: str | None, keys: set[str] | None = None,
                        current_dirty: bool = False) -> str | None:
    """The newest usable clean record's commit on this machine (of the series `keys`), not `current_commit` if clean."""
    ok = [r for r in records if (fingerprint is None or r.machine_fingerprint == fingerprint)
          and (keys is None or series_key(r) in keys) and not r.dirty and r.commit and is_usable(r)
          and not (current_commit and r.commit == current_commit and not current_dirty)]
    return max(ok, key=lambda r: r.timestamp).commit if ok else None


def pick_default_commit(mine: Sequence[ResultRecord], current: Sequence[ResultRecord], *,
                        current_commit: str | None, fingerprint: str,
                        current_dirty: bool = False) -> tuple[str | None, str]:
    """The default baseline commit among this machine's records (same profile settings if any), and why."""
    settings = {(series_key(r), profile_digest(r)) for r in current}
    kw = dict(current_commit=current_commit, fingerprint=fingerprint, keys={series_key(r) for r in current},
              current_dirty=current_dirty)
    what = "the latest commit with clean runs" if current_dirty else "the latest other commit measured"
    commit = latest_other_commit([r for r in mine if (series_key(r), profile_digest(r)) in settings], **kw)
    if commit is not None:
        return commit, f"{what} on this machine with the same profile settings"
    return latest_other_commit(mine, **kw), f"{what} on this machine"


def baseline_records(stored: Sequence[ResultRecord], current: Sequence[ResultRecord], *,
                     session_id: str | None) -> list[ResultRecord]:
    """The baseline's records but this session's own; of a series run there on the current profile settings, those."""
    ids = {r.record_id for r in current}
    settings = {(series_key(r), profile_digest(r)) for r in current}
    base = [r for r in stored if r.record_id not in ids and (r.extra or {}).get("session_id") != session_id]
    like = {series_key(r) for r in base if (series_key(r), profile_digest(r)) in settings}
    return [r for r in base if series_key(r) not in like or (series_key(r), profile_digest(r)) in settings]


#: Sequential comparisons: a look every R rounds a side while a gated metric is undecided (worse by more than FUTILITY
#: x its threshold, yet not failed), each at alpha / looks (Bonferroni) so that all looks together keep alpha.
FUTILITY = 0.0


def plan(rounds: int, max_rounds: int) -> list[int]:
    """The rounds a side measured at each look: rounds, 2 x rounds, ... capped at max_rounds (at least one look)."""
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    n = max(1, math.ceil(max_rounds / rounds))
    return [min(rounds * (k + 1), max(max_rounds, rounds)) for k in range(n)]


def look_alpha(looks: int, alpha: float = ALPHA) -> float:
    return alpha / max(1, looks)


def worse_undecided(change_pct, threshold_pct: float, worse: str = "greater"):
    """Whether a change not failed asks for another look: worse by more than FUTILITY x the threshold."""
    return beyond(change_pct, FUTILITY * threshold_pct, worse)


def undecided(comp: Comparison) -> list[tuple[str, MetricDelta]]:
    """(series key, delta) of every gated metric not failed but undecided."""
    return [(s.key, d) for s in comp.series for d in s.deltas if d.threshold is not None and not d.failed
            and d.better in WORSE and worse_undecided(d.gate_change_pct, d.threshold.pct, WORSE[d.better])]


def should_continue(comp: Comparison, look: int, looks: int) -> bool:
    """Measure another look: none has failed, some gated metric is undecided, and a look is left."""
    return look + 1 < looks and not comp.failed and bool(undecided(comp))


def gate_looks(base: np.ndarray, cur: np.ndarray, threshold_pct: float, *, rounds: int, max_rounds: int,
               alpha: float = ALPHA, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The sequential gate on lower-is-better pairs, base and cur (m, >= max_rounds) -> (failed, rounds used)."""
    base, cur = np.atleast_2d(np.asarray(base, dtype=float)), np.atleast_2d(np.asarray(cur, dtype=float))
    looks = plan(rounds, max_rounds)
    a = look_alpha(len(looks), alpha)
    failed, used, going = np.zeros(len(base), bool), np.zeros(len(base), int), np.ones(len(base), bool)
    for k, n in enumerate(looks):
        idx = np.flatnonzero(going)
        if not idx.size:
            break
        b, c = base[idx, :n], cur[idx, :n]
        if can_decide(n, n, a):
            failed[idx], moved = gate_batch(b, c, threshold_pct, alpha=a, seed=seed)
        else:                                     # no outcome at these n reaches alpha: no failure
            moved = change_estimates(b, c)
        used[idx] = n
        going[idx] = ~failed[idx] & worse_undecided(moved, threshold_pct) & (k + 1 < len(looks))
    return failed, used
