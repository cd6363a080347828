"""Pure statistics over stored ResultRecords: per-metric deltas between two sets of runs, and whether a change
is beyond a threshold AND distinguishable from noise.

Metric names, units and directions (x-better) come from schemas/telemetry.schema.json via
engine.telemetry.metric_specs(); nothing here keeps its own list.

Noise test, by what the rounds allow:
- both sides >= 2 runs and Mann-Whitney U can reach the significance level with these sample sizes
  (two-sided exact minimum p = 2 / C(n1+n2, n1) < alpha, i.e. 4+ runs a side at alpha 0.05): Mann-Whitney U;
- both sides >= 2 runs otherwise: a bootstrap 95 % interval of the relative change of the median;
- one run on a side: "indicative" -- the delta is shown, never failed on.
"""
from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from llm_research_bench.harness.store import ResultRecord

ALPHA = 0.05
BOOTSTRAP_SAMPLES = 4000
UNUSABLE_OUTCOMES = ("timed_out", "crashed", "interrupted", "error", "skipped")


def metric_specs() -> dict[str, dict]:
    from llm_research_bench.engine.telemetry import metric_specs as specs
    return specs()


# --------------------------------------------------------------------------------------------- thresholds --
@dataclass(frozen=True)
class Threshold:
    """`--compare-fail METRIC:PCT`: fail when METRIC gets worse (per the schema's x-better) by more than PCT %."""
    metric: str
    pct: float
    better: str


_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([0-9]+(?:\.[0-9]+)?)\s*%?\s*$")


def parse_threshold(spec: str, specs: dict[str, dict] | None = None) -> Threshold:
    """'execution_time_s:10%' -> Threshold. Raises ValueError with one clear message for a bad spec."""
    specs = specs if specs is not None else metric_specs()
    m = _SPEC.match(spec or "")
    if not m:
        raise ValueError(f"--compare-fail '{spec}': expected METRIC:PCT, e.g. execution_time_s:10% "
                         f"or decode_tokens_per_second:5%")
    name, pct = m.group(1), float(m.group(2))
    if name not in specs:
        near = [n for n in specs if name.lower() in n or n in name.lower()]
        hint = f" (did you mean {', '.join(near[:3])}?)" if near else ""
        raise ValueError(f"--compare-fail '{spec}': unknown metric '{name}'{hint}; metrics with a direction: "
                         f"{', '.join(n for n, s in specs.items() if s.get('x-better') in ('lower', 'higher'))}")
    better = specs[name].get("x-better", "none")
    if better not in ("lower", "higher"):
        raise ValueError(f"--compare-fail '{spec}': metric '{name}' has no better direction in the schema "
                         f"(x-better: {better}), so it cannot regress")
    if pct <= 0:
        raise ValueError(f"--compare-fail '{spec}': the threshold must be above 0 %")
    return Threshold(name, pct, better)


# ------------------------------------------------------------------------------------------------ summaries --
@dataclass(frozen=True)
class Summary:
    n: int
    median: float | None
    q1: float | None
    q3: float | None

    @property
    def iqr(self) -> float | None:
        return None if self.q1 is None or self.q3 is None else self.q3 - self.q1


def _quantile(sorted_vals: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if len(sorted_vals) == 1:
        return sorted_vals[0]
    pos = (len(sorted_vals) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def summarize(values: Iterable[float | None]) -> Summary:
    """Median and IQR of the numeric values (None and non-finite values dropped)."""
    vals = sorted(float(v) for v in values if _usable_number(v))
    if not vals:
        return Summary(0, None, None, None)
    return Summary(len(vals), statistics.median(vals), _quantile(vals, 0.25), _quantile(vals, 0.75))


def _usable_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_usable(rec: ResultRecord) -> bool:
    """A measured run whose numbers can be compared: not a warm-up, it ran to the end and has telemetry.
    (A run that missed its budget still measured the run; one that crashed or timed out did not.)"""
    t = rec.telemetry or {}
    return (not rec.warmup and rec.outcome not in UNUSABLE_OUTCOMES and bool(t.get("success"))
            and not t.get("timed_out"))


def series_key(rec: ResultRecord) -> str:
    """Records of the same bench instance share this key across commits (the pytest node id)."""
    return rec.test_id


# ----------------------------------------------------------------------------------------------- statistics --
@dataclass
class Test:
    method: str                     # mann-whitney | bootstrap | indicative | none
    significant: bool | None        # None: no statistics (indicative)
    p_value: float | None = None
    ci_pct: tuple[float, float] | None = None   # bootstrap 95 % interval of the relative change, in %


def mwu_min_p(n1: int, n2: int) -> float:
    """Smallest two-sided p-value the exact Mann-Whitney U test can give for these sample sizes."""
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def _bootstrap_ci(base: Sequence[float], cur: Sequence[float], *, samples: int, seed: int) -> tuple[float, float]:
    import numpy as np
    rng = np.random.default_rng(seed)
    b = np.asarray(base, dtype=float)
    c = np.asarray(cur, dtype=float)
    bm = np.median(b[rng.integers(0, len(b), size=(samples, len(b)))], axis=1)
    cm = np.median(c[rng.integers(0, len(c), size=(samples, len(c)))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = (cm - bm) / np.abs(bm) * 100.0
    rel = rel[np.isfinite(rel)]
    if rel.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(rel, [2.5, 97.5])
    return float(lo), float(hi)


def noise_test(base: Sequence[float], cur: Sequence[float], *, alpha: float = ALPHA, seed: int = 0,
               samples: int = BOOTSTRAP_SAMPLES) -> Test:
    n1, n2 = len(base), len(cur)
    if n1 < 2 or n2 < 2:
        return Test("indicative", None)
    if len(set(base)) == 1 and len(set(cur)) == 1:
        # No spread on either side: any difference is exact (e.g. token counts of a deterministic run).
        return Test("exact", base[0] != cur[0])
    if mwu_min_p(n1, n2) < alpha:
        from scipy.stats import mannwhitneyu
        p = float(mannwhitneyu(cur, base, alternative="two-sided").pvalue)
        return Test("mann-whitney", p < alpha, p_value=p)
    lo, hi = _bootstrap_ci(base, cur, samples=samples, seed=seed)
    if math.isnan(lo):
        return Test("bootstrap", None)
    return Test("bootstrap", lo > 0 or hi < 0, ci_pct=(lo, hi))


# ------------------------------------------------------------------------------------------------- results --
@dataclass
class MetricDelta:
    metric: str
    label: str
    unit: str
    better: str                      # lower | higher | none
    base: Summary
    cur: Summary
    delta_pct: float | None          # (cur median - base median) / |base median| * 100
    change: str                      # worse | better | same | n/a
    test: Test
    threshold: Threshold | None = None
    failed: bool = False
    note: str = ""

    @property
    def indicative(self) -> bool:
        return self.test.method == "indicative"


@dataclass
class SeriesComparison:
    key: str                         # test id
    bench: str
    profile: str | None
    deltas: list[MetricDelta]
    notes: list[str] = field(default_factory=list)

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
    def failures(self) -> list[str]:
        out = []
        for s in self.series:
            for d in s.deltas:
                if d.failed:
                    out.append(failure_message(s, d))
        return out

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def for_key(self, key: str) -> SeriesComparison | None:
        return next((s for s in self.series if s.key == key), None)


def describe_test(t: Test) -> str:
    if t.method == "indicative":
        return "indicative (1 run on a side: no noise estimate)"
    if t.method == "mann-whitney":
        return f"Mann-Whitney U p={t.p_value:.3g}"
    if t.method == "bootstrap":
        if t.ci_pct is None:
            return "bootstrap: undefined"
        return f"bootstrap 95% CI [{t.ci_pct[0]:+.1f} %, {t.ci_pct[1]:+.1f} %]"
    if t.method == "exact":
        return "no run-to-run spread"
    return t.method


def failure_message(s: SeriesComparison, d: MetricDelta) -> str:
    assert d.threshold is not None
    return (f"{s.bench}[{s.profile}] {d.metric}: {d.base.median:.4g} -> {d.cur.median:.4g} {d.unit} "
            f"({d.delta_pct:+.1f} %, worse; threshold {d.threshold.pct:g} %; {describe_test(d.test)})")


def _compare_metric(name: str, spec: dict, base_vals: list[float], cur_vals: list[float],
                    threshold: Threshold | None, seed: int) -> MetricDelta:
    b, c = summarize(base_vals), summarize(cur_vals)
    better = spec.get("x-better", "none")
    delta = None
    if b.median is not None and c.median is not None:
        if b.median != 0:
            delta = (c.median - b.median) / abs(b.median) * 100.0
        elif c.median == 0:
            delta = 0.0
    if delta is None:
        change = "n/a"
    elif delta == 0 or better not in ("lower", "higher"):
        change = "same" if delta == 0 else "n/a"
    else:
        change = "worse" if (delta > 0) == (better == "lower") else "better"
    test = noise_test([float(x) for x in base_vals if _usable_number(x)],
                      [float(x) for x in cur_vals if _usable_number(x)], seed=seed) \
        if b.n and c.n else Test("none", None)
    failed, note = False, ""
    if threshold is not None and change == "worse" and delta is not None and abs(delta) > threshold.pct:
        if test.significant:
            failed = True
        elif test.method == "indicative":
            note = (f"beyond the {threshold.pct:g} % threshold but indicative only (1 run on a side): not failed; "
                    f"use --rounds 2 or more on both commits to judge")
        else:
            note = f"beyond the {threshold.pct:g} % threshold but not distinguishable from noise: not failed"
    return MetricDelta(name, spec.get("x-label") or name, spec.get("x-unit", ""), better, b, c, delta, change,
                       test, threshold, failed, note)


def headline_metrics(specs: dict[str, dict]) -> list[str]:
    """Metrics the schema labels (x-label) and gives a direction: the ones summaries show by default."""
    return [n for n, s in specs.items() if s.get("x-label") and s.get("x-better") in ("lower", "higher")]


def compare_records(baseline: Sequence[ResultRecord], current: Sequence[ResultRecord], *,
                    thresholds: Sequence[Threshold] = (), metrics: Sequence[str] | None = None,
                    baseline_name: str = "baseline", current_name: str = "current",
                    specs: dict[str, dict] | None = None, key: Callable[[ResultRecord], str] = series_key,
                    seed: int = 0) -> Comparison:
    """Compare the usable runs of each series present on both sides.

    metrics: which to compare (default: the schema's headline metrics plus every thresholded one)."""
    specs = specs if specs is not None else metric_specs()
    names = list(metrics) if metrics is not None else headline_metrics(specs)
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
    series = []
    for k in sorted(set(gb) & set(gc)):
        brs, crs = gb[k], gc[k]
        deltas = [_compare_metric(n, specs.get(n, {}), [r.metric(n) for r in brs if _usable_number(r.metric(n))],
                                  [r.metric(n) for r in crs if _usable_number(r.metric(n))], by_t.get(n), seed)
                  for n in names]
        notes = []
        bprof = {_profile_digest(r) for r in brs} - {None}
        cprof = {_profile_digest(r) for r in crs} - {None}
        if bprof and cprof and bprof != cprof:
            notes.append("profile settings differ from the baseline's")
        if any(r.dirty for r in crs) and not any(r.dirty for r in brs):
            notes.append("current runs come from a dirty working tree")
        busy_b = sum(1 for r in brs if (r.extra or {}).get("contended"))
        busy_c = sum(1 for r in crs if (r.extra or {}).get("contended"))
        traced = sum(1 for r in [*brs, *crs] if (r.extra or {}).get("memray_capture"))
        if traced:
            notes.append(f"{traced} run(s) traced by memray: their timings are inflated")
        if busy_b or busy_c:
            notes.append(f"timed on a busy machine: {busy_b} of {len(brs)} baseline and {busy_c} of {len(crs)} "
                         f"current runs (other processes' CPU load): timing deltas are not trustworthy")
        series.append(SeriesComparison(k, crs[-1].bench, crs[-1].profile, deltas, notes))
    attempted = {key(r) for r in current}     # series this session ran, usable or not
    return Comparison(baseline_name, current_name, series, list(thresholds),
                      sorted((set(gb) - set(gc)) & attempted), sorted(set(gc) - set(gb)))


def _profile_digest(rec: ResultRecord) -> str | None:
    return (rec.extra or {}).get("profile_digest")


# ---------------------------------------------------------------------------------------- baseline choice --
def latest_other_commit(records: Iterable[ResultRecord], *, current_commit: str | None,
                        fingerprint: str | None, keys: set[str] | None = None) -> str | None:
    """The commit, other than `current_commit`, whose newest usable record on this machine is the newest.
    With `keys`, only records of those series (test ids) count: a commit where only other benches ran is
    no baseline for these."""
    best: tuple[str, str] | None = None
    for r in records:
        if fingerprint is not None and r.machine_fingerprint != fingerprint:
            continue
        if keys is not None and series_key(r) not in keys:
            continue
        if not r.commit or (current_commit and r.commit == current_commit) or not is_usable(r):
            continue
        if best is None or r.timestamp > best[0]:
            best = (r.timestamp, r.commit)
    return best[1] if best else None
