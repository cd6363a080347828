"""The end of a bench session: its records (and a baseline's) read from the store and judged by analysis (the CI
gate, the comparison, per-instance summaries, the seed's rates per bench x profile) into a SessionSummary, which
report/ prints and report/document.py writes as JSON (schemas/session.schema.json)."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Sequence

from ..analysis.compare import add_power, baseline_records, compare_records, pick_default_commit, saved_session
from ..analysis.instances import SessionSummary, judge
from ..records import ResultRecord
from ..report.document import SessionHead
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
    summary = judge(records, o.unverified, compare_requested=o.compare is not None)
    if records:
        base = choose_baseline(ctx, records, tally)
        summary.baseline_note = base.note
        if base.records:
            summary.comparison = add_power(compare_records(
                base.records, records, thresholds=o.compare_fail if o.compare is not None else (),
                names=(base.label, ctx.git.short + " (this session)"), history=base.history))
    summary.store_skipped = tally.lines() + list(ctx.unsaved)
    summary.unsaved = len(ctx.unsaved)
    return summary


def session_head(ctx: BenchContext) -> SessionHead:
    """Where a pytest session's runs come from, for its document (--research-json)."""
    git, o = ctx.git, ctx.options
    return SessionHead(
        ctx.plugin_version, ctx.session_id, o.save, _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        {"id": git.commit, "dirty": git.dirty, "branch": git.branch}, ctx.machine.as_dict(), ctx.machine_class,
        {"rounds": o.rounds, "warmup_runs": o.warmup_runs, "budget_scale": o.budget_scale, "backend": o.backend,
         "isolate": o.isolate, "memray": o.memray, "profiles": o.selected, "results_dir": str(o.results_dir),
         "compare": o.compare})
