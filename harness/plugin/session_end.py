"""The end of a bench session, orchestrated: read this session's records (and, for a comparison, the baseline's)
from the store, let analysis judge them (the CI gate, the baseline comparison, per-instance summaries, the
recommendations), and hand the result to the report printers. The hooks call `finish`; the terminal summary
and the Markdown file are written by report/terminal.py and report/markdown.py from the SessionSummary."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

from ..analysis.baseline import baseline_records, pick_default_commit
from ..analysis.compare import Comparison, compare_records
from ..analysis.gate import InstanceVerdict, failing, instance_verdicts, unverified
from ..analysis.instances import InstanceSummary, summarize_instances
from ..records import ResultRecord
from ..run.context import BenchContext
from ..run.store import StoreWarning, iter_records_where


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

    @property
    def regressions(self) -> list:
        return self.comparison.regressions if self.comparison is not None and self.compare_requested else []

    @property
    def failed(self) -> bool:
        return bool(self.missed or self.regressions)


def session_records(ctx: BenchContext, *, from_store: bool) -> list[ResultRecord]:
    """This session's records: in memory, or (an xdist controller, whose workers wrote them) from the store."""
    if not from_store:
        return list(ctx.records)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        recs = iter_records_where(ctx.options.results_dir, fingerprint=ctx.machine.fingerprint,
                                  commit=ctx.git.commit or None, strict_versions=False)
        return [r for r in recs if (r.extra or {}).get("session_id") == ctx.session_id]


def choose_baseline(ctx: BenchContext, current: Sequence[ResultRecord]
                    ) -> tuple[str | None, list[ResultRecord], str, list[ResultRecord]]:
    """(baseline commit, its records on this machine, a note saying what was chosen or why nothing was, and this
    machine's stored records of other commits: the history a noise estimate may use)."""
    o = ctx.options
    fp = ctx.machine.fingerprint
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        mine = list(iter_records_where(o.results_dir, fingerprint=fp, strict_versions=False))
    history = [r for r in mine if (r.extra or {}).get("session_id") != ctx.session_id]
    if o.compare_commit:
        commit, how = o.compare_commit, f"--research-compare={o.compare}"
    else:
        commit, how = pick_default_commit(mine, current, current_commit=ctx.git.commit, fingerprint=fp)
        if commit is None:
            return None, [], (f"no baseline: no other commit has results of these benches on this machine "
                              f"({fp}) under {o.results_dir}"), history
    stored = [r for r in mine if (r.commit or "").startswith(commit)]
    base = baseline_records(stored, current, session_id=ctx.session_id)
    if not base:
        return commit, [], f"no baseline: {commit[:12]} ({how}) has no results on this machine ({fp})", history
    return commit, base, f"baseline {commit[:12]} ({how}), {len(base)} record(s)", history


def finish(ctx: BenchContext, records: Sequence[ResultRecord]) -> SessionSummary:
    o = ctx.options
    records = list(records)
    verdicts = instance_verdicts(records)
    summary = SessionSummary(records, summarize_instances(records), failing(verdicts, o.unverified),
                             unverified(verdicts), o.unverified, compare_requested=o.compare is not None)
    if not records:
        return summary
    commit, base, note, history = choose_baseline(ctx, records)
    summary.baseline_note = note
    if base:
        cur_name = (ctx.git.commit or "nocommit")[:12] + ("+dirty" if ctx.git.dirty else "") + " (this session)"
        summary.comparison = compare_records(base, records, thresholds=o.compare_fail if o.compare is not None
                                             else (), baseline_name=commit[:12], current_name=cur_name,
                                             history=[r for r in history if r.commit != ctx.git.commit])
    return summary
