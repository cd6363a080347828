"""`research-bench find RANGE --metric M[:PCT] [pytest args]`: bisect a range for the first commit where M got worse
(run/history.py). Exit status: 0 found; 1 none found or stopped undecided; 2 a usage error; 130 Ctrl-C."""
from __future__ import annotations

import json
import math

from ..analysis.names import DEFAULT_PCT
from .cli import UsageError, count, progress, usage
from .run import add_range_arguments, range_settings

PASS_THROUGH = True
DEFAULT_ROUNDS = 5


def add_arguments(p) -> None:
    add_range_arguments(p, DEFAULT_ROUNDS)
    p.add_argument("--metric", required=True, metavar="METRIC[:PCT]",
                   help=f"the metric that got worse, and the gate's threshold (default {DEFAULT_PCT:g} %%), "
                        f"e.g. tpot_s:10%%")
    p.add_argument("--research-max-rounds", "--max-rounds", dest="max_rounds", metavar="N",
                   help="sequential steps, as continuous: more rounds while a step is undecided, up to N a side")


def _step(j) -> dict:
    d = j.delta
    return {"commit": j.commit.sha, "subject": j.commit.subject, "verdict": j.verdict, "why": j.why,
            "source": j.source, "seconds": round(j.seconds, 3),
            "before": d.base.median if d else None, "after": d.cur.median if d else None,
            "change_pct": d.gate_change_pct if d else None, "p": d.test.p_worse if d else None}


def as_json(search, threshold) -> dict:
    return {"metric": threshold.metric, "threshold_pct": threshold.pct, "good": search.good.sha,
            "commits": len(search.commits), "found": _step(search.found) if search.found else None,
            "stopped": search.stopped or None, "interrupted": search.interrupted,
            "steps": [_step(j) for j in search.steps]}


def print_text(search, threshold) -> None:
    for k, j in enumerate(search.steps, 1):
        print(f"step {k}: {j.commit.short} {j.verdict:9} {j.why} ({j.source}, {j.seconds:.0f} s)  {j.commit.subject}")
    n = len(search.steps)
    if search.found:
        f = search.found
        print(f"first worse commit: {f.commit.sha[:12]} \"{f.commit.subject}\" ({f.commit.date}): {f.why}; "
              f"{n} step(s) over {len(search.commits)} commit(s)")
    else:
        print(f"no commit found where {threshold.metric} got worse by more than {threshold.pct:g} % "
              f"({search.stopped or 'the last commit is not worse than the good end'}); {n} step(s)")


def run(args) -> int:
    from ..analysis.changepoints import default_thresholds
    from ..run.continuous import ContinuousError
    from ..run.history import bisect, range_commits
    s, spec, last = range_settings(args, DEFAULT_ROUNDS)
    max_rounds = count("--research-max-rounds", args.max_rounds, None, s.rounds)
    with usage(ValueError, ContinuousError):
        threshold = default_thresholds([args.metric])[0]
        good, commits = range_commits(s.cwd, spec, last)
    if good is None:
        raise UsageError("the range has no good end: give A..B, two or more commits, or --last N with a commit before "
                         "them")
    progress(f"find: {threshold.metric} worse by more than {threshold.pct:g} % than {good.short}, over "
             f"{len(commits)} commit(s): at most {1 + math.ceil(math.log2(max(len(commits), 1)))} steps")
    search = bisect(good, commits, s, threshold, progress, max_rounds=max_rounds)
    if args.format == "json":
        print(json.dumps(as_json(search, threshold), indent=1))
    else:
        print_text(search, threshold)
    return 130 if search.interrupted else 0 if search.found else 1
