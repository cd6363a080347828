"""`research-bench continuous BASE [HEAD] [pytest args]`: an interleaved A/B of two commits on this machine, as
`asv continuous` (run/continuous.py). Exit status: 0; 1 a regression beyond noise or HEAD's session failed; 2 a usage
error; 3 a side without a usable run; 128 + the signal's number when stopped."""
from __future__ import annotations

import sys
from pathlib import Path

from .cli import add_session_arguments, count, progress, usage

PASS_THROUGH = True                 # every argument this command does not know goes to both pytest sessions
DEFAULT_ROUNDS = 5


def add_arguments(p) -> None:
    p.epilog = "Anything else goes to both pytest sessions, e.g. -m quick (default path: benches)."
    p.add_argument("base", metavar="BASE", help="the baseline commit (a git ref: HEAD~1, origin/main, a SHA)")
    p.add_argument("head", metavar="HEAD", nargs="?", help="the commit to judge (default: HEAD)")
    add_session_arguments(p, DEFAULT_ROUNDS, "side", ("text", "markdown", "json"))
    p.add_argument("--research-max-rounds", "--max-rounds", dest="max_rounds", metavar="N",
                   help="sequential: while a gated metric is undecided (worse, not failed), measure "
                        "--research-rounds more a side, up to N in all; each look tests at alpha / looks "
                        "(default: --research-rounds, one look)")
    p.add_argument("--research-compare-fail", "--compare-fail", dest="compare_fail", metavar="METRIC:PCT",
                   action="append", default=[], help="exit 1 when METRIC got worse by more than PCT %% and the "
                   "change is distinguishable from noise (repeatable), e.g. execution_time_s:5%%")
    p.add_argument("--keep-worktrees", action="store_true", help="leave the temporary worktrees in place")


def _refs(base: str, head: str | None, pytest_args: list[str]) -> tuple[str | None, list[str]]:
    """(HEAD or None, pytest arguments), a HEAD that is a path going to pytest; ValueError names an unknown ref."""
    from ..run.environment import resolve_ref
    if head is not None and Path(head.split("::")[0]).exists() and not resolve_ref(head, Path.cwd()):
        head, pytest_args = None, [head, *pytest_args]
    for ref, what in ((base, "BASE"), (head, "HEAD")):
        if ref is not None and not resolve_ref(ref, Path.cwd()):
            raise ValueError(f"'{ref}': git does not know this ref ({what}: a commit, branch, tag or HEAD~N; in CI "
                             f"fetch enough history, e.g. actions/checkout with fetch-depth: 0)")
    return head, pytest_args


def settings(args):
    """The run.continuous.Settings of the parsed arguments; ValueError or StoreError names a bad one."""
    from ..run.continuous import Settings
    from ..run.environment import machine_info
    from ..run.refs import default_results_dir
    from ..run.store import check_store
    from .compare import thresholds
    head, pytest_args = _refs(args.base, args.head, args.pytest_args)
    rounds = count("--research-rounds", args.rounds, DEFAULT_ROUNDS)
    results_dir = Path(args.results_dir or default_results_dir()).resolve()
    check_store(results_dir, machine_info().fingerprint)
    return Settings(args.base, head or "HEAD", results_dir,
                    pytest_args, rounds, count("--research-max-rounds", args.max_rounds, rounds, rounds),
                    count("--research-warmup-runs", args.warmup_runs, 1, 0),
                    thresholds(args.compare_fail, "--research-compare-fail"), args.keep_worktrees)


def print_session(sess, s, fmt: str) -> None:
    from ..report import comparison
    comp, (a, b), looks = sess.comparison, sess.sides, sess.looks
    seq = [f"sequential: {sess.measured} of up to {looks[-1]} rounds a side, look {looks.index(sess.measured) + 1} "
           f"of {len(looks)}, each look at alpha {sess.alpha:.3g}"] if len(looks) > 1 else []
    if fmt == "json":
        sides = {o.side.name: {"ref": o.side.ref, "commit": o.side.commit, "returncode": o.returncode}
                 for o in sess.outcomes}
        print(comparison.as_json(comp, {"run": sess.run_id, "sides": sides, "rounds": sess.measured, "looks": looks,
                                        "alpha": sess.alpha}))
    elif fmt == "markdown":
        print(comparison.markdown(comp, [f"### Interleaved comparison {s.base} ({a.short}) -> {s.head} ({b.short}), "
                                         f"{sess.measured} rounds a side", *seq], with_notes=True))
    else:
        print(*seq, comparison.text(comp), sep="\n")


def run(args) -> int:
    from ..run.continuous import ContinuousError, Stopped, run_continuous, stop_on_signals
    from ..run.store import StoreError
    with usage(ValueError, StoreError):
        s = settings(args)
    try:
        with usage(ContinuousError), stop_on_signals():
            sess = run_continuous(s, progress)
    except Stopped as e:
        print(f"continuous: {e.message}", file=sys.stderr, flush=True)
        return e.exit_status
    if sess.comparison is None:
        print("continuous: a side produced no usable run (see the logs above): nothing to compare", file=sys.stderr)
        return 3
    print_session(sess, s, args.format)
    bad = next((o for o in sess.outcomes if o.side.name == "B" and o.returncode not in (0, 5)), None)  # HEAD's
    if bad is not None:
        print(f"continuous: HEAD's own session failed (pytest exit status {bad.returncode}): its targets were "
              f"missed or a bench failed; see {bad.log}", file=sys.stderr)
    return 1 if sess.comparison.failed or bad is not None else 0
