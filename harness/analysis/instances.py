"""A session judged (pure): per bench instance (one test id) its runs summarised (the summary table's rows), the
gate's verdicts, the comparison with a baseline where one was made, and the seed's rates."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..records import (REASON_CATEGORY, ResultRecord, Summary, is_contended, is_number, is_superseded, series_key,
                       summarize)
from .compare import Comparison
from .gate import DEFAULT_UNVERIFIED, MET, MISSED, UNVERIFIED, InstanceVerdict, failing, instance_verdicts, unverified
from .session import BenchAggregate, aggregates
from .stats import group_by

#: Telemetry metrics an instance row shows, besides time and memory (names checked against the schema in tests).
ROW_METRICS = ("ttft_s", "tokens_per_second", "claims", "citation_validity")


@dataclass
class InstanceSummary:
    """One bench instance (test id) of a session."""
    test_id: str
    key: str                                    # records.series_key: what comparisons are keyed by
    bench: str
    profile: str | None
    runs: int
    warmups: int
    time: Summary                               # execution_time_s over the measured runs
    time_upper: float | None
    time_lower: float | None
    memory_peak: float | None                   # worst measured run
    memory_limit: float | None
    metrics: dict[str, float | None]            # ROW_METRICS -> median
    early_exit: dict | None                     # the last measured run's early_exit block
    target_met: bool
    gated: bool
    reasons: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)   # REASON_CATEGORY words of the missed targets
    notes: list[str] = field(default_factory=list)
    runner: str | None = None
    status: str = MET                           # met | missed | unverified (the worst of its instance runs)
    contended: int = 0                          # measured attempts timed on a busy machine
    remeasured: int = 0                         # of which measured again
    busy_runs: int = 0                          # kept (not superseded) measured runs timed on a busy machine
    attempts: int = 0                           # measured attempts, superseded ones included
    busiest: float | None = None                # the most cores other processes kept busy during an attempt
    under_budget: int = 0                       # kept runs faster than the time band's lower bound

    @property
    def busy_only(self) -> bool:
        """Every kept run was timed on a busy machine: the row's time is inflated."""
        return self.runs > 0 and self.busy_runs == self.runs

    @property
    def unverified(self) -> bool:
        """A time miss seen only on a busy machine (and nothing else missed)."""
        return self.status == UNVERIFIED


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def summarize_instances(records: Iterable[ResultRecord]) -> list[InstanceSummary]:
    return [_summary(tid, recs) for tid, recs in group_by(records, lambda r: r.test_id).items()]


def _is_under(r: ResultRecord) -> bool:
    return ((r.extra or {}).get("verdict") or {}).get("time_status") == "under"


def _own_note(r: ResultRecord, note: str) -> bool:
    """A run's note other than its busy-machine or under-budget one (the row's busy_runs and under_budget say it)."""
    return not ((is_contended(r) and "busy machine" in note) or (_is_under(r) and "under budget" in note))


def _summary(tid: str, recs: list[ResultRecord]) -> InstanceSummary:
    measured = [r for r in recs if not r.warmup] or recs
    last, budget = measured[-1], measured[-1].budget or {}
    vals = [r for r in measured if not is_superseded(r) and r.telemetry is not None]
    peaks = [p for p in (((r.extra or {}).get("verdict") or {}).get("memory_peak_mb") or r.metric("memory_peak_mb")
                         for r in measured) if is_number(p)]
    verdicts = instance_verdicts(recs)
    loads = [float(x) for r in measured if is_contended(r) and is_number(x := (r.extra or {}).get("other_cpu_load"))]
    status = next((s for s in (MISSED, UNVERIFIED) if any(v.status == s for v in verdicts)), MET)
    return InstanceSummary(
        test_id=tid, key=series_key(last), bench=last.bench, profile=last.profile,
        runs=sum(1 for r in recs if not r.warmup and not is_superseded(r)), warmups=sum(1 for r in recs if r.warmup),
        time=summarize(r.metric("execution_time_s") for r in vals),
        time_upper=budget.get("time_upper_s"), time_lower=budget.get("time_lower_s"),
        memory_peak=max(peaks) if peaks else None, memory_limit=budget.get("memory_mb"),
        metrics={m: summarize(r.metric(m) for r in vals).median for m in ROW_METRICS},
        early_exit=(vals[-1].telemetry or {}).get("early_exit") if vals else None,
        target_met=status == MET, gated=any(r.gated for r in measured),
        reasons=_unique(m for v in verdicts for m in v.run_reasons),
        categories=_unique(REASON_CATEGORY.get(c, c) for v in verdicts for c in v.codes),
        notes=_unique(m for r in measured for m in (r.extra or {}).get("notes", []) if _own_note(r, m)),
        runner=next(((r.extra or {}).get("runner") for r in measured if (r.extra or {}).get("runner")), None),
        status=status, contended=sum(v.contended for v in verdicts), remeasured=sum(v.remeasured for v in verdicts),
        busy_runs=sum(1 for r in vals if is_contended(r)), attempts=sum(1 for r in recs if not r.warmup),
        busiest=max(loads) if loads else None, under_budget=sum(1 for r in vals if _is_under(r)))


@dataclass
class SessionSummary:
    records: list[ResultRecord]
    instances: list[InstanceSummary]
    missed: list[InstanceVerdict] = field(default_factory=list)      # gated instance runs that fail the session
    unverified: list[InstanceVerdict] = field(default_factory=list)  # gated ones resting on contended runs only
    unverified_policy: str = DEFAULT_UNVERIFIED
    comparison: Comparison | None = None
    baseline_note: str | None = None          # why there is no comparison, or what the baseline is
    compare_requested: bool = False
    store_skipped: list[str] = field(default_factory=list)     # what reading the store left out, one line a kind
    unsaved: int = 0                                            # records the store could not take (in a fallback)
    aggregates: list[BenchAggregate] = field(default_factory=list)   # the seed's rates per bench x profile

    @property
    def regressions(self) -> list:
        return self.comparison.regressions if self.comparison is not None and self.compare_requested else []

    @property
    def failed(self) -> bool:
        return bool(self.missed or self.regressions)


def judge(records: Sequence[ResultRecord], unverified_policy: str = DEFAULT_UNVERIFIED,
          compare_requested: bool = False) -> SessionSummary:
    """`records` judged under `unverified_policy` (pass | fail); the caller adds a comparison if it has a baseline."""
    verdicts = instance_verdicts(records)
    return SessionSummary(list(records), summarize_instances(records), failing(verdicts, unverified_policy),
                          unverified(verdicts), unverified_policy, compare_requested=compare_requested,
                          aggregates=aggregates(records))
