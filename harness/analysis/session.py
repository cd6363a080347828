"""The seed's rates per bench x profile over a session's measured runs (pure): early exit, errors, the gate's novelty
average, decode throughput, targets met, each instance's budget verdict; and their comparison between two sets of
runs. A rate is a count over an n, never a bare share; a comparison that no outcome at these n could decide says so."""
from __future__ import annotations

from dataclasses import dataclass, field
from math import comb
from typing import Iterable, Sequence

from ..records import (CRASHED, ERROR, INTERRUPTED, NO_TELEMETRY, RUN_CRASHED, RUN_FAILED, RUN_TIMED_OUT,
                       SCHEMA_INVALID, SKIPPED, TIMED_OUT, ResultRecord, is_number, is_superseded, summarize)
from .gate import MET, instance_verdicts
from .stats import ALPHA, group_by

#: Reason codes and stored outcomes of a run that failed rather than missed a target (error_rate counts them).
ERROR_CODES = frozenset({RUN_FAILED, RUN_TIMED_OUT, RUN_CRASHED, NO_TELEMETRY, SCHEMA_INVALID})
ERROR_OUTCOMES = frozenset({ERROR, TIMED_OUT, CRASHED})
#: The gate's reasons for a batch it judged against its threshold (not the first batch, the reference).
JUDGED = ("above_threshold", "below_threshold")
#: The counted rates, in the order the footer and the comparison show them.
RATES = ("early_exit_rate", "error_rate", "target_met_rate")


@dataclass(frozen=True)
class Rate:
    """`count` of `n` runs; `value` is None when n is 0."""
    value: float | None = field(init=False)
    count: int
    n: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", self.count / self.n if self.n else None)


@dataclass(frozen=True)
class Average:
    """A mean over `n` values (judged batches) drawn from `runs` runs; `value` is None when n is 0."""
    value: float | None
    n: int
    runs: int


@dataclass(frozen=True)
class BudgetVerdict:
    """One instance's budget verdict (analysis/gate.py): met | missed | unverified, and its time against the band."""
    test_id: str
    status: str
    time_status: str
    time_s: float | None
    time_lower_s: float | None
    time_upper_s: float | None
    runs: int
    missed: list[str]


@dataclass(frozen=True)
class BenchAggregate:
    """The seed's rates of one bench on one profile over a session's measured runs."""
    bench: str
    profile: str | None
    runs: int
    instances: int
    early_exit_rate: Rate
    error_rate: Rate
    novelty_score_average: Average
    tokens_per_second: float | None
    tokens_per_second_n: int
    target_met_rate: Rate
    target_met: bool
    verdicts: list[BudgetVerdict] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.bench}[{self.profile}]" if self.profile else self.bench


def is_measured(rec: ResultRecord) -> bool:
    """A run the rates count: measured (not a warm-up), not measured again, not stopped by the user or skipped."""
    return not rec.warmup and not is_superseded(rec) and rec.outcome not in (INTERRUPTED, SKIPPED)


def is_error(rec: ResultRecord) -> bool:
    """A run that failed: it crashed, timed out, the engine failed, or its telemetry is missing or invalid."""
    return (rec.outcome in ERROR_OUTCOMES or bool(ERROR_CODES & set(rec.reason_codes)) or rec.schema_valid is False
            or (rec.telemetry is not None and not rec.telemetry.get("success", True)))


def judged_novelty(rec: ResultRecord) -> list[float]:
    """The gate's novelty of each batch it judged in this run (traces.gate)."""
    gate = ((rec.telemetry or {}).get("traces") or {}).get("gate") or []
    return [float(g["novelty"]) for g in gate if g.get("reason") in JUDGED and is_number(g.get("novelty"))]


def _groups(records: Iterable[ResultRecord]) -> dict:
    return group_by(records, lambda r: (r.bench, r.profile))


def aggregate(bench: str, profile: str | None, recs: Sequence[ResultRecord]) -> BenchAggregate:
    """One bench x profile's rates over all of its records of a session (warm-ups and re-measured runs left out)."""
    measured = [r for r in recs if is_measured(r)]
    errors = [r for r in measured if is_error(r)]
    completed = [r for r in measured if not is_error(r) and r.telemetry is not None]
    tps = summarize(r.metric("tokens_per_second") for r in completed)
    per_run = [judged_novelty(r) for r in completed]
    novelty = [v for vs in per_run for v in vs]
    verdicts = [BudgetVerdict(v.test_id, v.status, v.time_status, v.time_s, v.time_lower_s, v.time_upper_s, v.runs,
                              list(v.codes)) for v in instance_verdicts(recs)]
    return BenchAggregate(
        bench, profile, runs=len(measured), instances=len({r.test_id for r in measured}),
        early_exit_rate=Rate(sum(bool((r.telemetry.get("early_exit") or {}).get("triggered")) for r in completed),
                             len(completed)),
        error_rate=Rate(len(errors), len(measured)),
        novelty_score_average=Average(sum(novelty) / len(novelty) if novelty else None, len(novelty),
                                      sum(1 for vs in per_run if vs)),
        tokens_per_second=tps.median, tokens_per_second_n=tps.n,
        target_met_rate=Rate(sum(1 for r in measured if r.target_met), len(measured)),
        target_met=bool(verdicts) and all(v.status == MET for v in verdicts), verdicts=verdicts)


def aggregates(records: Iterable[ResultRecord]) -> list[BenchAggregate]:
    """Every bench x profile among `records`, in the order they first appear."""
    return [aggregate(b, p, rs) for (b, p), rs in _groups(records).items()]


def pooled(aggs: Sequence[BenchAggregate]) -> dict[str, Rate | Average]:
    """The seed's three rates over every bench x profile together (the terminal footer's line)."""
    nov = [a.novelty_score_average for a in aggs if a.novelty_score_average.n]
    total = sum(a.n for a in nov)
    return {**{k: Rate(sum(getattr(a, k).count for a in aggs), sum(getattr(a, k).n for a in aggs))
               for k in RATES[:2]},
            "novelty_score_average": Average(sum(a.value * a.n for a in nov) / total if total else None, total,
                                             sum(a.runs for a in nov))}


#: Which way each compared rate is better.
BETTER = {"early_exit_rate": "none", "error_rate": "lower", "novelty_score_average": "none",
          "target_met_rate": "higher"}
CANNOT_DECIDE, NO_CHANGE, DIFFERENT = "cannot decide", "no detectable change", "different"


@dataclass(frozen=True)
class RateDelta:
    """One rate of one bench x profile on both sides: the values, their n, the test and what it says."""
    key: str
    metric: str
    base: float | None
    cur: float | None
    n_base: int
    n_cur: int
    method: str              # fisher_exact | mannwhitneyu | none
    p_value: float | None
    verdict: str             # cannot decide | no detectable change | different | better | worse
    why: str = ""


def _fisher(base: Rate, cur: Rate, alpha: float) -> tuple[float | None, bool]:
    """Fisher's exact test's p, and whether these n could reach `alpha` at all (the most extreme table's p)."""
    from scipy.stats import fisher_exact
    if not base.n or not cur.n:
        return None, False
    extreme = fisher_exact([[base.n, 0], [0, cur.n]]).pvalue
    p = fisher_exact([[base.count, base.n - base.count], [cur.count, cur.n - cur.count]]).pvalue
    return float(p), extreme < alpha


def _mannwhitney(base: list[float], cur: list[float], alpha: float) -> tuple[float | None, bool]:
    """Mann-Whitney U's two-sided p over per-run means, and whether these n could reach `alpha` (2 / C(n1+n2, n1))."""
    from scipy.stats import mannwhitneyu
    if not base or not cur:
        return None, False
    reachable = 2 / comb(len(base) + len(cur), len(base)) < alpha
    if len(set(base) | set(cur)) == 1:
        return 1.0, reachable
    return float(mannwhitneyu(base, cur, alternative="two-sided").pvalue), reachable


def _verdict(metric: str, base: float | None, cur: float | None, p: float | None, reachable: bool,
             alpha: float) -> tuple[str, str]:
    """What a compared rate's test says, and why it cannot decide."""
    if p is None:
        return CANNOT_DECIDE, "no run on a side"
    if not reachable:
        return CANNOT_DECIDE, f"too few runs: no outcome at these n could reach p < {alpha:g}"
    better = BETTER.get(metric, "none")
    if p >= alpha:
        return NO_CHANGE, ""
    if better == "none" or base is None or cur is None:
        return DIFFERENT, ""
    return ("better" if (cur < base) == (better == "lower") else "worse"), ""


def compare_aggregate(base_recs: Sequence[ResultRecord], cur_recs: Sequence[ResultRecord], key: str,
                      alpha: float = ALPHA) -> list[RateDelta]:
    """The rates of one bench x profile, baseline vs current."""
    b, c = aggregate("", None, base_recs), aggregate("", None, cur_recs)
    out = []
    for metric in RATES:
        rb, rc = getattr(b, metric), getattr(c, metric)
        p, reachable = _fisher(rb, rc, alpha)
        out.append(RateDelta(key, metric, rb.value, rc.value, rb.n, rc.n, "fisher_exact" if p is not None else "none",
                             p, *_verdict(metric, rb.value, rc.value, p, reachable, alpha)))
    mb, mc = ([sum(v) / len(v) for v in (judged_novelty(r) for r in rs if is_measured(r) and not is_error(r)) if v]
              for rs in (base_recs, cur_recs))
    p, reachable = _mannwhitney(mb, mc, alpha)
    nb, nc = b.novelty_score_average.value, c.novelty_score_average.value
    out.append(RateDelta(key, "novelty_score_average", nb, nc, len(mb), len(mc),
                         "mannwhitneyu" if p is not None else "none", p,
                         *_verdict("novelty_score_average", nb, nc, p, reachable, alpha)))
    return out


def compare_rates(baseline: Sequence[ResultRecord], current: Sequence[ResultRecord],
                  alpha: float = ALPHA) -> list[RateDelta]:
    """The seed's rates (and the target-met rate) of every bench x profile both sides ran."""
    gb, gc = _groups(baseline), _groups(current)
    return [d for bench, profile in gc if (bench, profile) in gb
            for d in compare_aggregate(gb[(bench, profile)], gc[(bench, profile)],
                                       f"{bench}[{profile}]" if profile else bench, alpha)]
