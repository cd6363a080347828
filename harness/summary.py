"""The end of a session: the CI gate (any gated, measured record with target_met false), the comparison with a
baseline (--compare / --compare-fail) and the summary rows, built from the records the session wrote."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from llm_research_bench.harness import report
from llm_research_bench.harness.compare import Comparison, compare_records, latest_other_commit, series_key
from llm_research_bench.harness.config import BenchContext
from llm_research_bench.harness.store import ResultRecord, StoreWarning, iter_records_where


@dataclass
class SessionSummary:
    records: list[ResultRecord]
    rows: list[report.Row]
    gate_failures: list[str] = field(default_factory=list)
    comparison: Comparison | None = None
    baseline_note: str | None = None          # why there is no comparison, or what the baseline is
    compare_requested: bool = False

    @property
    def compare_failures(self) -> list[str]:
        return self.comparison.failures if self.comparison is not None else []

    @property
    def failed(self) -> bool:
        return bool(self.gate_failures or self.compare_failures)


def gate_failures(records: Sequence[ResultRecord]) -> list[str]:
    """One line per measured, gated record that missed its target."""
    out = []
    for r in records:
        if r.warmup or r.target_met or (r.extra or {}).get("gate") is False:
            continue
        why = "; ".join(m.splitlines()[0] for m in r.reasons) or r.outcome
        out.append(f"{r.test_id} (round {r.round}): {why}")
    return out


def session_records(ctx: BenchContext, *, from_store: bool) -> list[ResultRecord]:
    """This session's records: in memory, or (an xdist controller, whose workers wrote them) from the store."""
    if not from_store:
        return list(ctx.records)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        recs = iter_records_where(ctx.options.results_dir, fingerprint=ctx.machine.fingerprint,
                                  commit=ctx.git.commit or None, strict_versions=False)
        return [r for r in recs if (r.extra or {}).get("session_id") == ctx.session_id]


def _digest(r: ResultRecord) -> str | None:
    return (r.extra or {}).get("profile_digest")


def choose_baseline(ctx: BenchContext, current: Sequence[ResultRecord]) -> tuple[str | None, list[ResultRecord], str]:
    """(baseline commit, its records on this machine, a note saying what was chosen or why nothing was).

    Like with like: the default baseline is the latest other commit with runs of these benches on the same
    profile settings (profile_digest), else with runs of these benches at all; within the baseline commit,
    a series' runs on the current settings are used when there are any."""
    o = ctx.options
    fp = ctx.machine.fingerprint
    keys = {series_key(r) for r in current}
    settings = {(series_key(r), _digest(r)) for r in current}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        if o.compare_commit:
            commit = o.compare_commit
            how = f"--compare={o.compare}"
        else:
            mine = list(iter_records_where(o.results_dir, fingerprint=fp, strict_versions=False))
            same = [r for r in mine if (series_key(r), _digest(r)) in settings]
            commit = latest_other_commit(same, current_commit=ctx.git.commit, fingerprint=fp, keys=keys)
            how = "the latest other commit measured on this machine with the same profile settings"
            if commit is None:
                commit = latest_other_commit(mine, current_commit=ctx.git.commit, fingerprint=fp, keys=keys)
                how = "the latest other commit measured on this machine"
            if commit is None:
                return None, [], (f"no baseline: no other commit has results of these benches on this machine "
                                  f"({fp}) under {o.results_dir}")
        ids = {r.record_id for r in current}
        base = [r for r in iter_records_where(o.results_dir, fingerprint=fp, commit=commit, strict_versions=False)
                if r.record_id not in ids and (r.extra or {}).get("session_id") != ctx.session_id]
    like = {series_key(r) for r in base if (series_key(r), _digest(r)) in settings}
    base = [r for r in base if series_key(r) not in like or (series_key(r), _digest(r)) in settings]
    if not base:
        return commit, [], f"no baseline: {commit[:12]} ({how}) has no results on this machine ({fp})"
    return commit, base, f"baseline {commit[:12]} ({how}), {len(base)} record(s)"


def finish(ctx: BenchContext, records: Sequence[ResultRecord]) -> SessionSummary:
    o = ctx.options
    records = list(records)
    summary = SessionSummary(records, report.rows_from_records(records), gate_failures(records),
                             compare_requested=o.compare is not None)
    if not records:
        return summary
    commit, base, note = choose_baseline(ctx, records)
    summary.baseline_note = note
    if base:
        cur_name = (ctx.git.commit or "nocommit")[:12] + ("+dirty" if ctx.git.dirty else "") + " (this session)"
        summary.comparison = compare_records(base, records, thresholds=o.compare_fail if o.compare is not None
                                             else (), baseline_name=commit[:12], current_name=cur_name)
        for row in summary.rows:
            row.delta = report.delta_cell(summary.comparison.for_key(row.test_id))
    return summary


def write_markdown(summary: SessionSummary, ctx: BenchContext, path: Path | None) -> list[Path]:
    """Write the Markdown summary to `path` and append it to $GITHUB_STEP_SUMMARY when set."""
    git = ctx.git
    context = (f"commit `{git.short}`{f' on `{git.branch}`' if git.branch else ''}, machine "
               f"`{ctx.machine.fingerprint}`, budgets for `{ctx.machine_class}`"
               f"{f' scaled x{ctx.options.budget_scale:g}' if ctx.options.budget_scale != 1 else ''}")
    text = report.markdown(summary.rows, comparison=summary.comparison if summary.compare_requested else None,
                           gate_failures=summary.gate_failures, compare_failures=summary.compare_failures,
                           context=context)
    extra = report.findings_lines(summary.records)
    if extra:
        text += "\n\n### Findings\n\n" + "\n".join(f"- {line}" for line in extra)
    written = []
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
        written.append(path)
    gh = os.environ.get("GITHUB_STEP_SUMMARY")
    if gh:
        with open(gh, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")
        written.append(Path(gh))
    return written
