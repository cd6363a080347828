"""`research-bench continuous BASE [HEAD] [pytest args]`: an interleaved A/B comparison of two commits on this
machine, the way `asv continuous` works (the machinery: run/continuous.py).

Both commits are checked out in temporary git worktrees and benched in one go on this machine, each side a
pytest session of this checkout's benches and harness importing its own commit's engine from the same venv;
their measured rounds interleave, each round in another order (A B, B A, ...), so that drift and other processes'
load hit both alike. Both sides' records are stored under their commits (extra['continuous'] names the session
and the side). The comparison is `research-bench compare`'s, over this session's runs only. With
--research-max-rounds above --research-rounds it is sequential (analysis/sequential.py): after every
--research-rounds rounds a side it compares, and measures more only while a gated metric is undecided.

Exit status: 0; 1 when a --research-compare-fail threshold is crossed by a change distinguishable from noise
(or when HEAD's own session failed its targets); 2 for a usage error; 3 when a side produced no usable run.
"""
from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

HELP = "interleaved A/B comparison of two commits on this machine (temporary worktrees, asv continuous style)"

#: This command's own options (the plugin's spelling and a short one); every other argument goes to pytest.
OWN = {
    "--research-rounds": "rounds", "--rounds": "rounds",
    "--research-max-rounds": "max_rounds", "--max-rounds": "max_rounds",
    "--research-warmup-runs": "warmup_runs", "--warmup-runs": "warmup_runs",
    "--research-compare-fail": "compare_fail", "--compare-fail": "compare_fail",
    "--research-results-dir": "results_dir", "--results-dir": "results_dir",
    "--format": "format", "--keep-worktrees": "keep_worktrees",
}
SWITCHES = {"--keep-worktrees"}
DEFAULT_ROUNDS = 5


class UsageError(ValueError):
    pass


def add_arguments(p) -> None:
    """For `research-bench continuous --help` (the arguments themselves are parsed by `parse`, because
    everything this command does not know goes to pytest)."""
    p.add_argument("base", metavar="BASE", help="the baseline commit (a git ref: HEAD~1, origin/main, a SHA)")
    p.add_argument("head", metavar="HEAD", nargs="?", default="HEAD", help="the commit to judge (default: HEAD)")
    p.add_argument("--research-rounds", "--rounds", metavar="N",
                   help=f"measured rounds a side (default {DEFAULT_ROUNDS}; 5+ for robustness to a spike)")
    p.add_argument("--research-max-rounds", "--max-rounds", metavar="N",
                   help="sequential: while a gated metric is undecided (worse, not failed), measure "
                        "--research-rounds more a side, up to N in all; each look tests at alpha / looks "
                        "(default: --research-rounds, one look)")
    p.add_argument("--research-warmup-runs", "--warmup-runs", metavar="N", help="warm-up runs a side (default 1)")
    p.add_argument("--research-compare-fail", "--compare-fail", metavar="METRIC:PCT", action="append",
                   help="exit 1 when METRIC got worse by more than PCT %% and the change is distinguishable from "
                        "noise (repeatable), e.g. execution_time_s:5%%")
    p.add_argument("--research-results-dir", "--results-dir", metavar="DIR",
                   help="where both sides' records go (default: $RESEARCH_BENCH_RESULTS_DIR or ./results)")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    p.add_argument("--keep-worktrees", action="store_true", help="leave the temporary worktrees in place")
    p.add_argument("pytest_args", nargs="*", metavar="PYTEST_ARGS",
                   help="anything else goes to both pytest sessions, e.g. -m quick (default path: benches)")


def parse(argv: list[str]) -> dict:
    """BASE [HEAD] [own options] [pytest args], in any order after BASE."""
    from ..run.environment import resolve_ref

    if not argv or argv[0].startswith("-"):
        raise UsageError("give the baseline commit first: research-bench continuous BASE [HEAD] [pytest args]")
    out: dict = {"base": argv[0], "head": "HEAD", "compare_fail": [], "pytest": [], "format": "text",
                 "keep_worktrees": False}
    rest = argv[1:]
    if rest and not rest[0].startswith("-") and not Path(rest[0]).exists() and resolve_ref(rest[0], Path.cwd()):
        out["head"], rest = rest[0], rest[1:]
    i = 0
    while i < len(rest):
        a = rest[i]
        name, eq, val = a.partition("=")
        if name in OWN:
            key = OWN[name]
            if name in SWITCHES:
                out[key] = True
                i += 1
                continue
            if not eq:
                if i + 1 >= len(rest):
                    raise UsageError(f"{name} needs a value")
                val, i = rest[i + 1], i + 1
            if key == "compare_fail":
                out[key].append(val)
            else:
                out[key] = val
        else:
            out["pytest"].append(a)
        i += 1
    return out


def _int(name: str, v, default: int, minimum: int) -> int:
    if v is None:
        return default
    try:
        x = int(str(v))
    except ValueError:
        raise UsageError(f"--research-{name}: expected a whole number, got {v!r}") from None
    if x < minimum:
        raise UsageError(f"--research-{name}: must be at least {minimum}, got {v!r}")
    return x


def _with_default_path(pytest_args: list[str]) -> list[str]:
    """pytest's own default (the project's testpaths) would run the tests: default to benches/."""
    if any(not a.startswith("-") and Path(a.split("::")[0]).exists() for a in pytest_args):
        return pytest_args
    return ["benches", *pytest_args]


def main(argv: list[str]) -> int:
    try:
        o = parse(argv)
        rounds = _int("rounds", o.get("rounds"), DEFAULT_ROUNDS, 1)
        max_rounds = _int("max-rounds", o.get("max_rounds"), rounds, rounds)
        warm = _int("warmup-runs", o.get("warmup_runs"), 1, 0)
        from ..analysis.thresholds import parse_threshold
        thresholds = []
        for spec in o["compare_fail"]:
            try:
                thresholds.append(parse_threshold(spec))
            except ValueError as e:
                raise UsageError(f"--research-compare-fail {e}") from None
        if o["format"] not in ("text", "markdown", "json"):
            raise UsageError(f"--format: choose text, markdown or json, not {o['format']!r}")
    except UsageError as e:
        print(f"continuous: {e}", file=sys.stderr)
        return 2
    results_dir = Path(o.get("results_dir") or os.environ.get("RESEARCH_BENCH_RESULTS_DIR") or "results").resolve()
    return run_continuous(o["base"], o["head"], o["pytest"], rounds=rounds, max_rounds=max_rounds, warmup_runs=warm,
                          thresholds=thresholds, results_dir=results_dir, fmt=o["format"],
                          keep_worktrees=o["keep_worktrees"])


def side_pytest_args(pytest_args: list[str], *, rounds: int, warmup_runs: int, results_dir: Path) -> list[str]:
    """What each side's pytest session is given: the user's arguments, the rounds, where records go, and the
    corpus as this checkout resolves it (a worktree elsewhere would look for ../shared beside itself)."""
    args = _with_default_path(list(pytest_args))
    args += ["--research-rounds", str(rounds), "--research-warmup-runs", str(warmup_runs),
             "--research-results-dir", str(results_dir), "-p", "no:cacheprovider"]
    if not any(a.startswith("--research-corpus") for a in pytest_args):
        from llm_research_bench.engine.corpus import DEFAULT_PUBMEDQA
        if DEFAULT_PUBMEDQA.exists():
            args += ["--research-corpus", str(DEFAULT_PUBMEDQA)]
    return args


def session_records(results_dir: Path, run_id: str) -> dict[str, list]:
    """This continuous session's records, by side."""
    from ..run.environment import machine_info
    from ..run.store import read_store

    out: dict[str, list] = {}
    for r in read_store(results_dir, fingerprint=machine_info().fingerprint).records:
        c = (r.extra or {}).get("continuous") or {}
        if c.get("run") == run_id:
            out.setdefault(c.get("side"), []).append(r)
    return out


def _progress(line: str) -> None:
    """The sides' output and the command's progress go to stderr; the comparison alone to stdout."""
    print(line, file=sys.stderr, flush=True)


def run_continuous(base: str, head: str, pytest_args: list[str], *, rounds: int, warmup_runs: int, thresholds,
                   results_dir: Path, fmt: str = "text", keep_worktrees: bool = False, cwd: Path | None = None,
                   echo=_progress, max_rounds: int | None = None) -> int:
    """Bench both commits interleaved and compare them; with max_rounds > rounds, sequentially: a look after
    every `rounds` rounds a side, more rounds only while a gated metric is undecided (analysis/sequential.py)."""
    from ..analysis.compare import compare_records
    from ..analysis.sequential import look_alpha, plan, should_continue, undecided
    from ..records import is_usable
    from ..run.continuous import ContinuousError, Worktrees, run_sides
    from . import comparison as C

    import shutil
    import tempfile

    cwd = Path(cwd or Path.cwd())
    run_id = uuid.uuid4().hex[:12]
    work = Path(tempfile.mkdtemp(prefix=f"research-bench-continuous-{run_id}-"))
    looks = plan(rounds, max_rounds or rounds)
    alpha = look_alpha(len(looks))
    outcomes: list = []
    comp = None
    measured = 0
    try:
        with Worktrees(cwd, keep=keep_worktrees) as wt:
            a, b = wt.add("A", base), wt.add("B", head)
            echo(f"continuous {run_id}: A = {base} ({a.short}), B = {head} ({b.short}); {rounds} interleaved "
                 f"rounds a side after {warmup_runs} warm-up(s)"
                 + (f", up to {looks[-1]} in {len(looks)} looks (each tests at alpha {alpha:.3g})"
                    if len(looks) > 1 else "") + f"; worktrees under {wt.root}")
            for k, total in enumerate(looks):
                args = side_pytest_args(pytest_args, rounds=total - measured, warmup_runs=warmup_runs,
                                        results_dir=results_dir)
                if k == 0:
                    echo(f"each side: pytest {' '.join(args)}")
                outcomes += run_sides([a, b], args, cwd=cwd, run_id=run_id, echo=echo, workdir=work / f"look-{k + 1}")
                measured = total
                by_side = session_records(results_dir, run_id)
                base_recs, cur_recs = by_side.get("A", []), by_side.get("B", [])
                if not any(is_usable(r) for r in base_recs) or not any(is_usable(r) for r in cur_recs):
                    break
                comp = compare_records(base_recs, cur_recs, thresholds=thresholds, alpha=alpha, power=False,
                                       baseline_name=f"{base} {a.short}", current_name=f"{head} {b.short}")
                if not should_continue(comp, k, len(looks)):
                    break
                echo(f"look {k + 1} of {len(looks)} ({total} rounds a side): undecided: "
                     + "; ".join(f"{key} {d.metric} {d.gate_change_pct:+.1f} % (threshold {d.threshold.pct:g} %)"
                                 for key, d in undecided(comp))
                     + f"; measuring {looks[k + 1] - total} more rounds a side")
    except ContinuousError as e:
        shutil.rmtree(work, ignore_errors=True)
        print(f"continuous: {e}", file=sys.stderr)
        return 2
    keep_logs = keep_worktrees or any(o.returncode not in (0, 5) for o in outcomes)
    by_side = session_records(results_dir, run_id)
    for o in outcomes[-2:]:
        n = sum(1 for r in by_side.get(o.side.name, []) if is_usable(r))
        echo(f"side {o.side.name} ({o.side.ref} = {o.side.short}): pytest exit status "
             f"{', '.join(str(x.returncode) for x in outcomes if x.side.name == o.side.name)}, {n} usable "
             f"run(s)" + (f"; logs under {work}" if keep_logs else ""))
    if not keep_logs:
        shutil.rmtree(work, ignore_errors=True)
    if comp is None:
        print(f"continuous: a side produced no usable run (see the logs above): nothing to compare",
              file=sys.stderr)
        return 3
    if not comp.failed and thresholds:
        # The comparison shown: again, with the gate's power (a simulation the looks did without).
        comp = compare_records(by_side.get("A", []), by_side.get("B", []), thresholds=thresholds, alpha=alpha,
                               baseline_name=f"{base} {a.short}", current_name=f"{head} {b.short}")
    seq = (f"sequential: {measured} of up to {looks[-1]} rounds a side, look {looks.index(measured) + 1} of "
           f"{len(looks)}, each look at alpha {alpha:.3g}") if len(looks) > 1 else ""
    if fmt == "json":
        import dataclasses
        print(json.dumps({"run": run_id, "sides": {o.side.name: {"ref": o.side.ref, "commit": o.side.commit,
                                                                 "returncode": o.returncode} for o in outcomes},
                          "rounds": measured, "looks": looks, "alpha": alpha,
                          **dataclasses.asdict(comp), "failures": C.regression_lines(comp)}, indent=1, default=str))
    elif fmt == "markdown":
        print(f"### Interleaved comparison {base} ({a.short}) -> {head} ({b.short}), {measured} rounds a side\n")
        if seq:
            print(f"{seq}\n")
        print(C.table(comp, tablefmt="github"))
        for n in C.notes(comp):
            print(f"- note: {n}")
        for f in C.regression_lines(comp):
            print(f"- REGRESSION: {f}")
    else:
        if seq:
            print(seq)
        print(C.text(comp))
    head_codes = [o.returncode for o in outcomes if o.side.name == "B"]
    head_failed = any(c not in (0, 5) for c in head_codes)
    if head_failed:
        bad = next(o for o in outcomes if o.side.name == "B" and o.returncode not in (0, 5))
        print(f"continuous: HEAD's own session failed (pytest exit status {bad.returncode}): its targets "
              f"were missed or a bench failed; see {bad.log}", file=sys.stderr)
    return 1 if comp.failed or head_failed else 0
