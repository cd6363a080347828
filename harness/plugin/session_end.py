"""The end of a bench session: its records (and a baseline's) read from the store and judged by analysis into a
SessionSummary, written as Markdown (--research-summary-md) and JSON (--research-json) and printed by report/."""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import asdict, dataclass
from typing import Sequence

from llm_research_bench.engine.atomic import write_json

from ..analysis.compare import add_power, baseline_records, compare_records, pick_default_commit, saved_session
from ..analysis.instances import SessionSummary, judge
from ..records import ResultRecord
from ..report import document, markdown
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
    """The baseline on this machine (a commit's clean runs, or a saved session); the store read's skips go to
    `skipped`."""
    o, fp, git = ctx.options, ctx.machine.fingerprint, ctx.git
    read = read_store(o.results_dir, fingerprint=fp)
    skipped.merge(read.skipped)
    others = [r for r in read.records if (r.extra or {}).get("session_id") != ctx.session_id]
    if o.compare_name:
        stored = saved_session(read.records, o.compare_name)
        label, how = f"'{o.compare_name}'", f"--research-compare={o.compare}, a saved session"
    else:
        commit, how, earlier = o.compare_commit, f"--research-compare={o.compare}", []
        if not commit:
            commit, how = pick_default_commit(read.records, current, current_commit=git.commit, fingerprint=fp,
                                              current_dirty=bool(git.dirty))
        if not commit and not git.dirty:
            # No other commit measured here: this commit's earlier sessions (a clean tree's), an A/A comparison.
            earlier = [r for r in others if r.commit == git.commit]
            commit = pick_default_commit(earlier, current, current_commit=git.commit, fingerprint=fp,
                                         current_dirty=True)[0]
            how = "this commit's earlier sessions: no other commit is measured on this machine"
        if commit is None:
            also = ", nor does this commit's earlier session (no completed run)" if earlier else ""
            return Baseline(None, [], "no baseline: no other commit has clean results of these benches on this "
                                      f"machine{also} (use --research-compare=REF)", [])
        stored = [r for r in read.records if (r.commit or "nocommit").startswith(commit[:40]) and not r.dirty]
        label = commit[:12]
    base = baseline_records(stored, current, session_id=ctx.session_id)
    history = [r for r in others if r.commit != git.commit]
    note = (f"baseline {label} ({how}), {len(base)} record(s)" if base
            else f"no baseline: {label} ({how}) has no clean results on this machine ({fp})")
    return Baseline(label, base, note, history)


def finish(ctx: BenchContext, worker_paths: Sequence[str] = ()) -> SessionSummary:
    """The session's records (this process's, and xdist workers' files, read by path) judged and compared with a
    baseline, with what the store reads skipped; written where the options ask."""
    o, read = ctx.options, read_store(ctx.options.results_dir, files=worker_paths)
    records, tally = list(ctx.records) + read.records, read.skipped
    s = judge(records, o.unverified, compare_requested=o.compare is not None)
    if records:
        base = choose_baseline(ctx, records, tally)
        s.baseline_note = base.note
        if base.records:
            s.comparison = add_power(compare_records(
                base.records, records, thresholds=o.compare_fail if o.compare is not None else (),
                names=(base.label, ctx.git.short + " (this session)"), history=base.history))
    s.store_skipped = tally.lines() + list(ctx.unsaved)
    s.unsaved = len(ctx.unsaved)
    if o.summary_md is not None or (s.records and os.environ.get("GITHUB_STEP_SUMMARY")):
        markdown.write(s, ctx, o.summary_md)
    if o.json_path is not None:
        write_json(o.json_path, document.session_document(s, session_head(ctx)), indent=1, default=str)
    return s


def session_head(ctx: BenchContext) -> document.SessionHead:
    """Where a pytest session's runs come from, for its document (--research-json)."""
    git, o = ctx.git, ctx.options
    return document.SessionHead(
        ctx.plugin_version, ctx.session_id, o.save, _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        {"id": git.commit, "dirty": git.dirty, "branch": git.branch}, asdict(ctx.machine), ctx.machine_class,
        {"rounds": o.rounds, "warmup_runs": o.warmup_runs, "budget_scale": o.budget_scale, "backend": o.backend,
         "isolate": o.isolate, "memray": o.memray, "profiles": o.selected, "results_dir": str(o.results_dir),
         "compare": o.compare})
