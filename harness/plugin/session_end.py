"""The end of a bench session: its records (and a baseline's) read from the store and judged by analysis (the CI
gate, the comparison, per-instance summaries) into a SessionSummary, which report/ prints and session_document
writes as JSON."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Sequence

from ..analysis.baseline import baseline_records, pick_default_commit, saved_session
from ..analysis.compare import Comparison, add_power, compare_records
from ..analysis.gate import InstanceVerdict, failing, instance_verdicts, unverified
from ..analysis.instances import InstanceSummary, summarize_instances
from ..records import RECORD_VERSION, ResultRecord
from ..run.context import BenchContext
from ..run.store import Skipped, read_store


@dataclass
class Baseline:
    """What a session is compared with, a note saying what was chosen or why nothing was, and this machine's
    records of other sessions and commits (a noise estimate's history)."""
    label: str | None
    records: list[ResultRecord]
    note: str
    history: list[ResultRecord]


@dataclass
class SessionSummary:
    records: list[ResultRecord]
    instances: list[InstanceSummary]
    missed: list[InstanceVerdict] = field(default_factory=list)      # gated instance runs that fail the session
    unverified: list[InstanceVerdict] = field(default_factory=list)  # gated ones resting on contended runs only
    unverified_policy: str = "pass"
    comparison: Comparison | None = None
    baseline_note: str | None = None          # why there is no comparison, or what the baseline is
    compare_requested: bool = False
    store_skipped: list[str] = field(default_factory=list)     # what reading the store left out, one line a kind

    @property
    def regressions(self) -> list:
        return self.comparison.regressions if self.comparison is not None and self.compare_requested else []

    @property
    def failed(self) -> bool:
        return bool(self.missed or self.regressions)


def choose_baseline(ctx: BenchContext, current: Sequence[ResultRecord], skipped: Skipped) -> Baseline:
    """The baseline to compare this session with (a commit's clean runs, or a saved session) on this machine, and
    this machine's records of other sessions and commits; the store read's skips go to `skipped`."""
    o, fp = ctx.options, ctx.machine.fingerprint
    read = read_store(o.results_dir, fingerprint=fp)
    skipped.merge(read.skipped)
    mine = read.records
    history = [r for r in mine if (r.extra or {}).get("session_id") != ctx.session_id and r.commit != ctx.git.commit]
    if o.compare_name:
        stored = saved_session(mine, o.compare_name)
        label, how = f"'{o.compare_name}'", f"--research-compare={o.compare}, a saved session"
    else:
        commit, how, earlier = o.compare_commit, f"--research-compare={o.compare}", []
        if not commit:
            commit, how = pick_default_commit(mine, current, current_commit=ctx.git.commit, fingerprint=fp,
                                              current_dirty=bool(ctx.git.dirty))
        if not commit and not ctx.git.dirty:
            # No other commit measured here: this commit's earlier sessions (a clean tree's), an A/A comparison.
            earlier = [r for r in mine if r.commit == ctx.git.commit and (r.extra or {}).get("session_id")
                       != ctx.session_id]
            commit = pick_default_commit(earlier, current, current_commit=ctx.git.commit, fingerprint=fp,
                                         current_dirty=True)[0]
            how = "this commit's earlier sessions: no other commit is measured on this machine"
        if commit is None:
            also = ", nor does this commit's earlier session (no completed run)" if earlier else ""
            return Baseline(None, [], "no baseline: no other commit has clean results of these benches on this "
                                      f"machine{also} (use --research-compare=REF)", history)
        stored = [r for r in mine if (r.commit or "nocommit").startswith(commit[:40]) and not r.dirty]
        label = commit[:12]
    base = baseline_records(stored, current, session_id=ctx.session_id)
    if not base:
        return Baseline(label, [], f"no baseline: {label} ({how}) has no clean results on this machine ({fp})",
                        history)
    return Baseline(label, base, f"baseline {label} ({how}), {len(base)} record(s)", history)


def finish(ctx: BenchContext, worker_paths: Sequence[str] = ()) -> SessionSummary:
    """The session's summary: its records (written in this process, or by xdist workers, whose files are read by
    path without a scan of the store) judged, compared with a baseline, and what the store reads skipped."""
    o, read = ctx.options, read_store(ctx.options.results_dir, files=worker_paths)
    records, tally = list(ctx.records) + read.records, read.skipped
    verdicts = instance_verdicts(records)
    summary = SessionSummary(records, summarize_instances(records), failing(verdicts, o.unverified),
                             unverified(verdicts), o.unverified, compare_requested=o.compare is not None)
    if records:
        base = choose_baseline(ctx, records, tally)
        summary.baseline_note = base.note
        if base.records:
            summary.comparison = add_power(compare_records(
                base.records, records, thresholds=o.compare_fail if o.compare is not None else (),
                names=(base.label, ctx.git.short + " (this session)"), history=base.history))
    summary.store_skipped = tally.lines()
    return summary


def session_document(summary: SessionSummary, ctx: BenchContext) -> dict:
    """The session as one JSON document (--research-json)."""
    from ..report.comparison import regression_lines
    git, o, comp = ctx.git, ctx.options, summary.comparison
    return {
        "format": "research-bench-session", "format_version": 1, "record_version": RECORD_VERSION,
        "plugin_version": ctx.plugin_version, "session_id": ctx.session_id, "saved_as": o.save,
        "datetime": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": {"id": git.commit, "dirty": git.dirty, "branch": git.branch},
        "machine": ctx.machine.as_dict(), "machine_class": ctx.machine_class,
        "options": {"rounds": o.rounds, "warmup_runs": o.warmup_runs, "budget_scale": o.budget_scale,
                    "backend": o.backend, "isolate": o.isolate, "memray": o.memray, "profiles": o.selected,
                    "results_dir": str(o.results_dir), "compare": o.compare},
        "passed": not summary.failed,
        "instances": [{"test_id": i.test_id, "bench": i.bench, "profile": i.profile, "runs": i.runs,
                       "warmups": i.warmups, "target_met": i.target_met, "gated": i.gated, "reasons": i.reasons,
                       "time_median_s": i.time.median, "time_iqr_s": i.time.iqr, "time_budget_s": i.time_upper,
                       "memory_peak_mb": i.memory_peak, "memory_limit_mb": i.memory_limit,
                       "metrics": dict(i.metrics)} for i in summary.instances],
        "missed_targets": [rid for v in summary.missed for rid in v.record_ids],
        "unverified": [{"test_id": v.test_id, "profile": v.profile, "time_s": v.time_s, "time_upper_s": v.time_upper_s,
                        "record_ids": v.record_ids} for v in summary.unverified],
        "unverified_policy": summary.unverified_policy,
        "baseline_note": summary.baseline_note,
        "comparison": None if comp is None else {"baseline": comp.baseline, "current": comp.current,
                                                 "regressions": regression_lines(comp)},
        "records": [r.as_dict() for r in summary.records],
    }
