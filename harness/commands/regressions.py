"""`research-bench regressions [RANGE]`: the steps for the worse in the stored history of every series, found by
analysis/changepoints.py and printed by report/regressions.py. Exit status: 0; 2 for a usage error."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .cli import add_store_arguments


def add_arguments(p) -> None:
    p.add_argument("range", metavar="RANGE", nargs="?",
                   help="only the commits of A..B (B's first-parent commits after A, and A) or of a comma list")
    add_store_arguments(p)
    p.add_argument("--metric", action="append", default=[], metavar="METRIC[:PCT]",
                   help="a metric to look at and the gate's threshold (default 5 %%; repeatable; "
                        f"default: every headline metric with a direction)")
    p.add_argument("--format", choices=("text", "json"), default="text")


def thresholds(specs: list[str]) -> list:
    """--metric as Thresholds (default: the headline metrics with a direction); ValueError names a bad one."""
    from ..analysis.changepoints import default_thresholds
    try:
        return default_thresholds(specs)
    except ValueError as e:
        raise ValueError(f"--metric {e}") from None


def _in_range(records: list, spec: str | None, cwd: Path) -> list:
    """The records of the range's commits (all of them without a range)."""
    if not spec:
        return records
    from ..run.history import range_commits
    good, commits = range_commits(cwd, spec)
    keep = {c.sha for c in commits} | ({good.sha} if good else set())
    return [r for r in records if r.commit in keep]


def run(args) -> int:
    from ..analysis.changepoints import history_steps
    from ..report.regressions import rows, text
    from ..run.continuous import ContinuousError
    from ..run.environment import git_order, resolve_ref
    from ..run.store import StoreError, read_store
    from .report import commit_labels
    cwd = Path.cwd()
    try:
        ts = thresholds(args.metric)
        read = read_store(args.results_dir)
        records = _in_range([r for r in read.records if args.machine in (None, r.machine_fingerprint)],
                            args.range, cwd)
    except (ValueError, ContinuousError, StoreError, OSError) as e:
        print(f"regressions: {e}", file=sys.stderr)
        return 2
    for line in read.skipped.lines():
        print(f"regressions: {line}", file=sys.stderr)
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
