"""`research-bench run RANGE [pytest args]`: bench each first-parent commit of a range in a worktree of its own
(run/history.py). Exit status: 0; 1 when a commit produced no usable run; 2 a usage error; 130 Ctrl-C."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .cli import UsageError, add_session_arguments, count, progress, usage

PASS_THROUGH = True                 # every argument this command does not know goes to each commit's session
DEFAULT_ROUNDS = 3
#: pytest options whose value is the next argument (never a RANGE)
_TAKES_VALUE = ("-m", "-k", "-p", "-c", "-o", "--rootdir", "--maxfail")
USAGE = "research-bench {} [RANGE | --last N] [options] [pytest args]"


def add_range_arguments(p, rounds: int) -> None:
    """RANGE, --last, the rounds and where records go: what `run` and `find` share."""
    p.usage = USAGE.format(p.prog.split()[-1])
    p.epilog = ("RANGE: A..B (B's first-parent commits after A; A is the good end), or a comma list of commits (the "
                "first is the good end). Anything else goes to each pytest session, e.g. -m quick (default path: "
                "benches).")
    p.add_argument("--last", metavar="N", help="the last N first-parent commits up to HEAD")
    add_session_arguments(p, rounds, "commit")


def add_arguments(p) -> None:
    add_range_arguments(p, DEFAULT_ROUNDS)
    p.add_argument("--steps", metavar="N", help="bench N commits of the range, spread evenly")
    p.add_argument("--skip-existing", action="store_true",
                   help="skip commits this machine already measured with the same settings (as asv run does)")


def split_range(rest: list[str], cwd: Path) -> tuple[str | None, list[str]]:
    """(RANGE, the pytest arguments) of the arguments argparse did not know: RANGE is the first one that is
    neither an option, an option's value nor a path, and names commits (A..B, a comma list or a git ref)."""
    from ..run.environment import resolve_ref
    for i, a in enumerate(rest):
        if a.startswith("-") or (i and rest[i - 1] in _TAKES_VALUE) or Path(a.split("::")[0]).exists():
            continue
        if ".." in a or "," in a or resolve_ref(a, cwd):
            return a, rest[:i] + rest[i + 1:]
    return None, list(rest)


def range_settings(args, rounds: int):
    """(run.history.RangeSettings, RANGE or None, --last) of the parsed arguments; a UsageError names a bad one."""
    from ..run.history import RangeSettings
    from ..run.refs import default_results_dir
    spec, rest = split_range(args.pytest_args, Path.cwd())
    if (spec is None) == (args.last is None):
        raise UsageError("give a RANGE (A..B or a comma list of commits) or --last N, not both" if spec else
                         "give a RANGE (A..B or a comma list of commits) or --last N")
    return RangeSettings(Path(args.results_dir or default_results_dir()).resolve(), rest,
                         count("--research-rounds", args.rounds, rounds),
                         count("--research-warmup-runs", args.warmup_runs, 1, 0), getattr(args, "skip_existing", False),
                         Path.cwd()), spec, count("--last", args.last)


def as_json(result, s) -> dict:
    return {"settings": {"key": s.key, "rounds": s.rounds, "warmup_runs": s.warmup_runs,
                         "pytest_args": s.pytest_args, "results_dir": str(s.results_dir)},
            "interrupted": result.interrupted,
            "commits": [{"commit": b.commit.sha, "subject": b.commit.subject, "date": b.commit.date,
                         "status": b.status, "runs": b.runs, "returncode": b.returncode,
                         "seconds": round(b.seconds, 3)} for b in result.benched]}


def run(args) -> int:
    from ..run.continuous import ContinuousError
    from ..run.history import bench_range, range_commits, spread
    s, spec, last = range_settings(args, DEFAULT_ROUNDS)
    steps = count("--steps", args.steps)
    with usage(ContinuousError):
        _, commits = range_commits(s.cwd, spec, last)
    commits = spread(commits, steps)
    progress(f"run: {len(commits)} commit(s), {s.rounds} round(s) each, records under {s.results_dir}")
    result = bench_range(commits, s, progress)
    if args.format == "json":
        print(json.dumps(as_json(result, s), indent=1))
    else:
        for b in result.benched:
            print(f"{b.commit.short} {b.status:8} {b.runs:3} run(s)  {b.commit.subject}")
    if result.interrupted:
        print(f"run: interrupted after {len(result.benched)} of {len(commits)} commit(s); what was measured is "
              f"kept, the worktrees removed", file=sys.stderr)
        return 130
    return 1 if any(b.status == "failed" for b in result.benched) else 0
