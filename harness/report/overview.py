"""What the HTML report shows first: the latest commit's verdicts and seed rates per bench; and which of a bench's
history charts open first, which fold, and which metrics did not change."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Sequence

from ..analysis import measures
from ..analysis.gate import instance_verdicts
from ..analysis.session import BenchAggregate, Rate
from ..analysis.instances import SessionSummary, judge
from ..records import ResultRecord, is_superseded, label, series_key, unit
from ..units import limit, num

if TYPE_CHECKING:
    from ..analysis.gate import InstanceVerdict
    from ..run.history import Commit

#: The metrics a bench's history charts first, in this order: time, TTFT, TPOT, memory, grounded rate.
HEADLINE = ("execution_time_s", "ttft_s", "tpot_s", "memory_peak_mb", "grounded_citation_rate")
#: A bench without any headline metric (quality, breakdown) opens on this many of its charts.
FIRST_CHARTS = 4
#: A metric whose every run lies within this share of its largest value did not change: it is folded.
FLAT_SPREAD = 0.01


@dataclass(frozen=True)
class VerdictRow:
    """One bench instance at the latest commit: its verdict, its time and memory against the budget."""
    series: str
    status: str                 # met | missed | unverified (analysis.gate)
    gated: bool
    runs: int
    met: int                    # runs that met their target
    time: str
    time_budget: str
    time_status: str            # within | over | under | unverified | unknown
    memory: str
    memory_limit: str
    memory_over: bool
    notes: tuple[str, ...]
    measured_at: str            # when its last run ended, YYYY-MM-DD HH:MM UTC


@dataclass(frozen=True)
class RateRow:
    """One bench x profile's seed rates over the latest commit's runs, as the page shows them (each with its n)."""
    series: str
    runs: int
    instances: int
    early_exit: str             # k/n (share), of the runs that completed
    errors: str                 # k/n (share), of the measured runs
    novelty: str                # mean over b judged batches
    tokens_per_second: str      # median over n runs
    tokens_per_second_n: int


@dataclass
class Summary:
    """The first section of a machine's part: its latest commit, its verdicts, its runs and their seed rates."""
    commit: str | None                            # commit key (measures.commit_key)
    info: "Commit | None"
    rows: list[VerdictRow] = field(default_factory=list)
    older: list[str] = field(default_factory=list)   # benches whose newest runs are of an earlier commit
    session: SessionSummary | None = None     # its runs judged as one session (the embedded session document)
    rates: list[RateRow] = field(default_factory=list)


def commit_infos(records: Sequence[ResultRecord], commits: Sequence["Commit"] | None) -> dict[str, "Commit"]:
    """Commit key (measures.commit_key) -> its Commit (hash, date, subject) for the records' commits described."""
    by_sha = {c.sha: c for c in commits or ()}
    return {measures.commit_key(r): by_sha[r.commit] for r in records if r.commit in by_sha}


def _memory(recs: Sequence[ResultRecord]) -> tuple[float | None, float | None]:
    """The median memory peak of an instance's measured runs and the limit they were held to."""
    peaks = [v for r in recs if measures.is_measurement(r) and (v := r.metric("memory_peak_mb")) is not None]
    cap = next(((r.budget or {}).get("memory_mb") for r in reversed(recs) if (r.budget or {}).get("memory_mb")), None)
    return (statistics.median(peaks) if peaks else None), cap


def _row(v: "InstanceVerdict", recs: Sequence[ResultRecord]) -> VerdictRow:
    mem, cap = _memory(recs)
    band = "" if v.time_upper_s is None else (
        f"{limit(v.time_lower_s)}–{limit(v.time_upper_s)} s" if v.time_lower_s is not None
        else f"< {limit(v.time_upper_s)} s")
    notes = list(dict.fromkeys(v.run_reasons))
    if v.contended:
        notes.append(f"{v.contended} of {v.attempts} attempt(s) timed on a busy machine"
                     + ("; no quiet run: time unverified" if v.time_basis == "contended" else ""))
    if not v.gated:
        notes.append("not gated (an ablation or reference bench)")
    return VerdictRow(series=v.key, status=v.status, gated=v.gated, runs=v.runs,
                      met=sum(1 for r in recs if not r.warmup and not is_superseded(r) and r.target_met),
                      time=num(v.time_s, "s", missing="—"), time_budget=band, time_status=v.time_status,
                      memory=num(mem, "MB", missing="—"), memory_limit=num(cap, "MB", missing=""),
                      memory_over=bool(mem is not None and cap and mem > cap), notes=tuple(notes),
                      measured_at=max(r.timestamp for r in recs)[:16].replace("T", " "))


def _share(r: Rate) -> str:
    return f"{r.count}/{r.n} ({r.value:.0%})" if r.n else "—"


def rate_rows(aggs: Sequence[BenchAggregate]) -> list[RateRow]:
    """The rows of the benches that ran the pipeline (a run with telemetry, or a failed one)."""
    out = []
    for a in aggs:
        if not (a.early_exit_rate.n or a.error_rate.count):
            continue
        nov = a.novelty_score_average
        out.append(RateRow(a.key, a.runs, a.instances, _share(a.early_exit_rate), _share(a.error_rate),
                           f"{nov.value:.2f} over {nov.n} batch{'es' if nov.n != 1 else ''}" if nov.n
                           else "no batch judged", num(a.tokens_per_second, "tok/s", missing="—"),
                           a.tokens_per_second_n))
    return out


def summary(mine: Sequence[ResultRecord], git_order: Sequence[str] | None,
            infos: Mapping[str, "Commit"]) -> Summary:
    """The latest commit measured on this machine, its instances' verdicts and its runs' seed rates."""
    judged = [r for r in mine if r.outcome != "skipped"]
    order = measures.commit_order(judged, git_order)
    if not order:
        return Summary(None, None)
    last = order[-1]
    at = [r for r in judged if measures.commit_key(r) == last]
    by_id = {r.record_id: r for r in at}
    rows = sorted((_row(v, [by_id[i] for i in v.record_ids if i in by_id]) for v in instance_verdicts(at)),
                  key=lambda row: (row.time == "—", row.series, row.measured_at))   # timed (pipeline) benches first
    shown = {r.series for r in rows}
    older = sorted({series_key(r) for r in mine if measures.is_measurement(r)} - shown)
    session = judge(at)
    return Summary(last, infos.get(last), rows, older, session, rate_rows(session.aggregates))


def is_flat(values: Sequence[float]) -> bool:
    """Two runs or more, all within FLAT_SPREAD of the largest magnitude (all zero counts as flat)."""
    if len(values) < 2:
        return False
    return max(values) - min(values) <= FLAT_SPREAD * max(abs(v) for v in values)


def chart_groups(names: Sequence[str], values: Mapping[str, Sequence[float]]) -> tuple[list, list, list]:
    """A bench's metrics as (charts shown first, those folded after, those that did not change)."""
    head = [k for k in HEADLINE if k in names]
    rest = [k for k in names if k not in head]
    flat = [k for k in rest if is_flat(values[k])]
    rest = [k for k in rest if k not in flat]
    if not head:
        head, rest = rest[:FIRST_CHARTS], rest[FIRST_CHARTS:]
    return head, rest, flat


def flat_text(flat: Sequence[str], values: Mapping[str, Sequence[float]]) -> str:
    """'claims 10, cit. valid 1.00': the unchanged metrics with their value, for the folded line."""
    return ", ".join(f"{label(k)} {num(statistics.median(values[k]), unit(k))}" for k in flat)
