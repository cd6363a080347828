"""The CI gate over a session's records (pure): each bench instance's verdict from its runs. Memory, schema, quality
and failures count per run; time once, on the quiet runs' median: with no quiet run a miss is UNVERIFIED, failing
the session only under --research-unverified=fail."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..records import (RUN_TIMED_OUT, TIME_OVER, ResultRecord, instance_of, is_contended, is_number,
                       is_superseded, series_key)
from ..units import limit as fmt_limit, pct as fmt_pct, pct_over, seconds as fmt_s
from .stats import group_by

MET, MISSED, UNVERIFIED = "met", "missed", "unverified"
#: What an unverified instance does to the session (--research-unverified / research_unverified).
UNVERIFIED_POLICIES = ("pass", "fail")
DEFAULT_UNVERIFIED = "pass"
#: The InstanceVerdict fields a record stores as they are (with its codes and record ids).
STORED = ("status", "time_status", "time_s", "time_basis", "time_runs", "runs", "attempts", "contended", "remeasured",
          "timed_out")


@dataclass
class InstanceVerdict:
    instance: str
    test_id: str
    key: str                                 # records.series_key
    profile: str | None
    status: str                              # met | missed | unverified
    gated: bool
    time_status: str = "unknown"             # within | over | under | unverified | unknown
    time_s: float | None = None              # the median the time verdict rests on
    time_basis: str | None = None            # quiet (the quiet runs) | contended (no quiet run: final attempts)
    time_runs: int = 0                       # how many runs that median is over
    time_upper_s: float | None = None
    time_lower_s: float | None = None
    runs: int = 0                            # measured rounds (final attempts)
    attempts: int = 0                        # measured attempts, re-measurements included
    contended: int = 0                       # attempts timed on a busy machine
    remeasured: int = 0                      # attempts measured again (superseded)
    other_cores: float | None = None         # the most cores other processes kept busy during an attempt
    timed_out: int = 0                       # attempts that timed out
    codes: list[str] = field(default_factory=list)          # what was missed (records' reason codes)
    run_reasons: list[str] = field(default_factory=list)    # the per-run misses' messages (time aside)
    record_ids: list[str] = field(default_factory=list)

    def fails(self, unverified: str = DEFAULT_UNVERIFIED) -> bool:
        """Under the unverified policy (an ungated verdict never fails the session)."""
        return self.gated and (self.status == MISSED or (self.status == UNVERIFIED and unverified == "fail"))

    def as_stored(self) -> dict:
        """What the instance's last record keeps in extra['instance_verdict']."""
        return {**{k: getattr(self, k) for k in STORED}, "codes": list(self.codes), "records": list(self.record_ids)}


def judge_time(t: float, lower: float | None, upper: float) -> str:
    """over | under | within: the one time rule, for one run's time and an instance's median alike."""
    return "over" if t > upper else "under" if lower is not None and t < lower else "within"


def over_budget(profile: str | None, t: float, upper: float) -> str:
    """'quick: 52.3 s > 45 s budget (+16 %)'"""
    return f"{profile}: {fmt_s(t)} s > {fmt_limit(upper)} s budget ({fmt_pct(pct_over(t, upper))})"


def _time(r: ResultRecord) -> float | None:
    t = r.metric("execution_time_s")
    return float(t) if is_number(t) else None


def _timed_out(r: ResultRecord) -> bool:
    return RUN_TIMED_OUT in r.reason_codes or bool((r.telemetry or {}).get("timed_out"))


def instance_verdict(records: Sequence[ResultRecord]) -> InstanceVerdict:
    """One instance run's verdict from its measured runs (else its warm-ups, so that one that died says why)."""
    measured = [r for r in records if not r.warmup] or list(records)
    last, busy = measured[-1], [r for r in measured if is_contended(r)]
    upper, lower = (last.budget or {}).get("time_upper_s"), (last.budget or {}).get("time_lower_s")
    v = InstanceVerdict(instance_of(last), last.test_id, series_key(last), last.profile, MET,
                        gated=any(r.gated for r in measured), time_upper_s=upper, time_lower_s=lower,
                        runs=sum(1 for r in measured if not is_superseded(r)), attempts=len(measured),
                        contended=len(busy), remeasured=sum(map(is_superseded, measured)),
                        timed_out=sum(map(_timed_out, measured)),
                        record_ids=[r.record_id for r in measured])
    v.other_cores = max((x for r in busy if is_number(x := (r.extra or {}).get("other_cpu_load"))), default=None)
    _per_run(v, measured)
    _time_of(v, measured, lower, upper)
    v.status = MISSED if v.codes else UNVERIFIED if v.time_status == "unverified" else MET
    return v


def _per_run(v: InstanceVerdict, measured: list[ResultRecord]) -> None:
    """The runs' misses but time (judged on the median) and a timeout on a busy machine."""
    for r in measured:
        codes = r.reason_codes
        pairs = zip(codes, r.reasons) if len(codes) == len(r.reasons) else [(c, None) for c in codes]
        for code, message in pairs:
            if code == TIME_OVER or (code == RUN_TIMED_OUT and is_contended(r)):
                continue
            if code not in v.codes:
                v.codes.append(code)
            if message and message not in v.run_reasons:
                v.run_reasons.append(message)


def _time_of(v: InstanceVerdict, measured: list[ResultRecord], lower: float | None, upper: float | None) -> None:
    """The median of the quiet runs that finished or timed out, else of the final attempts (a miss: unverified)."""
    timed = [r for r in measured if _time(r) is not None and ((r.telemetry or {}).get("success") or _timed_out(r))]
    quiet = [r for r in timed if not is_contended(r)]
    basis = quiet or [r for r in timed if not is_superseded(r)] or timed
    if not basis or upper is None:
        return
    v.time_basis, v.time_runs = "quiet" if quiet else "contended", len(basis)
    v.time_s = statistics.median(_time(r) for r in basis)
    v.time_status = judge_time(v.time_s, lower, upper)
    if not quiet and (v.time_status == "over" or any(_timed_out(r) for r in basis)):
        v.time_status = "unverified"
    elif v.time_status == "over" and TIME_OVER not in v.codes:
        v.codes.insert(0, TIME_OVER)


def instance_verdicts(records: Iterable[ResultRecord]) -> list[InstanceVerdict]:
    """Every instance run among `records` (records.instance_of), in the order they first appear."""
    return [instance_verdict(rs) for rs in group_by(records, instance_of).values()]


def failing(verdicts: Iterable[InstanceVerdict], unverified: str = DEFAULT_UNVERIFIED) -> list[InstanceVerdict]:
    return [v for v in verdicts if v.fails(unverified)]


def unverified(verdicts: Iterable[InstanceVerdict]) -> list[InstanceVerdict]:
    """The gated instance verdicts resting on contended runs only."""
    return [v for v in verdicts if v.gated and v.status == UNVERIFIED]
