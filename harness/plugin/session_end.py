"""The end of a bench session, orchestrated: read this session's records (and, for a comparison, the baseline's)
from the store, let analysis judge them (the CI gate, the baseline comparison, per-instance summaries, the
recommendations), and hand the result to the report printers. The hooks call `finish`; the terminal summary
and the Markdown file are written by report/terminal.py and report/markdown.py from the SessionSummary."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ..analysis.baseline import baseline_records, pick_default_commit
from ..analysis.compare import Comparison, compare_records
from ..analysis.gate import missed_targets
from ..analysis.instances import InstanceSummary, summarize_instances
from ..records import ResultRecord
from ..run.context import BenchContext
from ..run.store import Skipped, iter_records_where


@dataclass
class SessionSummary:
    records: list[ResultRecord]
    instances: list[InstanceSummary]
    missed: list[ResultRecord] = field(default_factory=list)     # gated, measured records that missed target
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


def session_records(ctx: BenchContext, *, from_store: bool, skipped: Skipped | None = None) -> list[ResultRecord]:
    """This session's records: in memory, or (an xdist controller, whose workers wrote them) from the store
    (what that read skips is tallied in `skipped`)."""
    if not from_store:
        return list(ctx.records)
    recs = iter_records_where(ctx.options.results_dir, fingerprint=ctx.machine.fingerprint,
                              commit=ctx.git.commit or None, skipped=Skipped() if skipped is None else skipped)
    return [r for r in recs if (r.extra or {}).get("session_id") == ctx.session_id]


def choose_baseline(ctx: BenchContext, current: Sequence[ResultRecord], *,
                    skipped: Skipped | None = None) -> tuple[str | None, list[ResultRecord], str]:
    """(baseline commit, its records on this machine, a note saying what was chosen or why nothing was). What the
    store reads skip is tallied in `skipped`."""
    o = ctx.options
    fp = ctx.machine.fingerprint
    tally = Skipped()
    if o.compare_commit:
        commit, how = o.compare_commit, f"--research-compare={o.compare}"
    else:
        mine = list(iter_records_where(o.results_dir, fingerprint=fp, skipped=tally))
        commit, how = pick_default_commit(mine, current, current_commit=ctx.git.commit, fingerprint=fp)
        if commit is None:
            if skipped is not None:
                skipped.merge(tally)
            return None, [], (f"no baseline: no other commit has results of these benches on this machine "
                              f"({fp}) under {o.results_dir}")
    stored = list(iter_records_where(o.results_dir, fingerprint=fp, commit=commit,
                                     skipped=Skipped() if o.compare_commit is None else tally))
    if skipped is not None:
        skipped.merge(tally)
    base = baseline_records(stored, current, session_id=ctx.session_id)
    if not base:
        return commit, [], f"no baseline: {commit[:12]} ({how}) has no results on this machine ({fp})"
    return commit, base, f"baseline {commit[:12]} ({how}), {len(base)} record(s)"


def finish(ctx: BenchContext, records: Sequence[ResultRecord], *, skipped: Skipped | None = None) -> SessionSummary:
    """The session's summary; `skipped`: what reading this session's records from the store left out."""
    o = ctx.options
    records = list(records)
    tally = Skipped()
    if skipped is not None:
        tally.merge(skipped)
    summary = SessionSummary(records, summarize_instances(records), missed_targets(records),
                             compare_requested=o.compare is not None)
    if not records:
        summary.store_skipped = tally.lines()
        return summary
    commit, base, note = choose_baseline(ctx, records, skipped=tally)
    summary.store_skipped = tally.lines()
    summary.baseline_note = note
    if base:
        cur_name = (ctx.git.commit or "nocommit")[:12] + ("+dirty" if ctx.git.dirty else "") + " (this session)"
        summary.comparison = compare_records(base, records, thresholds=o.compare_fail if o.compare is not None
                                             else (), baseline_name=commit[:12], current_name=cur_name)
    return summary
