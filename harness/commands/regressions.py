"""`research-bench regressions [RANGE]`: the steps for the worse in the stored history of every series, found by
analysis/changepoints.py and printed by report/regressions.py. Exit status: 0; 2 for a usage error."""
from __future__ import annotations

import json
from pathlib import Path

from .cli import add_store_arguments, read_for_output, usage


def add_arguments(p) -> None:
    p.add_argument("range", metavar="RANGE", nargs="?",
                   help="only the commits of A..B (B's first-parent commits after A, and A) or of a comma list")
    add_store_arguments(p)
    p.add_argument("--metric", action="append", default=[], metavar="METRIC[:PCT]",
                   help="a metric to look at and the gate's threshold (default 5 %%; repeatable; "
                        "default: every headline metric with a direction)")
    p.add_argument("--format", choices=("text", "json"), default="text")


def _in_range(records: list, spec: str | None, cwd: Path) -> list:
    """The records of the range's commits (all of them without a range)."""
    if not spec:
        return records
    from ..run.history import range_commits
    good, commits = range_commits(cwd, spec)
    keep = {c.sha for c in commits} | ({good.sha} if good else set())
    return [r for r in records if r.commit in keep]


def run(args) -> int:
    from ..analysis.changepoints import default_thresholds, history_steps
    from ..report.regressions import rows, text
    from ..run.continuous import ContinuousError
    from ..run.environment import git_order, resolve_ref
    from .report import commit_labels
    cwd = Path.cwd()
    with usage(ValueError, prefix="--metric "):
        ts = default_thresholds(args.metric)
    read = read_for_output(args)
    with usage(ValueError, ContinuousError):
        records = _in_range([r for r in read.records if args.machine in (None, r.machine_fingerprint)],
                            args.range, cwd)
    order, _ = git_order({r.commit for r in records if r.commit}, cwd)
    steps = history_steps(records, ts, git_order=order)
    shas = [sha for c in sorted({step.commit for step in steps}) if (sha := resolve_ref(c, cwd))]
    table = rows(steps, {c.sha[:12]: c.subject for c in commit_labels(shas, cwd)})
    if args.format == "json":
        print(json.dumps({"metrics": [{"metric": t.metric, "threshold_pct": t.pct} for t in ts],
                          "steps": table, "skipped": read.skipped.total}, indent=1))
    else:
        print(text(table))
    return 0
