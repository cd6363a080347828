"""`research-bench compare REF_A [REF_B]`: the plugin's --compare, offline, over the results store.

REF_A is the baseline, REF_B the current side (default: HEAD). A REF is anything git resolves to a commit
(HEAD~1, a tag, a SHA) or the prefix of a commit stored in the results. Exit status: 0, 1 when a
--compare-fail threshold is crossed by a change distinguishable from noise, 2 for a usage error.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import warnings
from collections import Counter
from pathlib import Path

HELP = "compare stored results of two commits (per-metric deltas, noise tests, --compare-fail)"


class CompareError(ValueError):
    pass


def add_arguments(p) -> None:
    p.add_argument("ref_a", metavar="REF_A", help="baseline: a git ref or a stored commit prefix")
    p.add_argument("ref_b", metavar="REF_B", nargs="?", default="HEAD", help="current side (default: HEAD)")
    p.add_argument("--results-dir", default=os.environ.get("RESEARCH_BENCH_RESULTS_DIR", "results"),
                   help="results store to read (default: $RESEARCH_BENCH_RESULTS_DIR or ./results)")
    p.add_argument("--machine", default=None,
                   help="machine fingerprint (default: this machine, else the one machine with results of both)")
    p.add_argument("--compare-fail", action="append", default=[], metavar="METRIC:PCT",
                   help="exit 1 when METRIC got worse by more than PCT %% and the change is distinguishable "
                        "from noise, e.g. execution_time_s:10%%")
    p.add_argument("--metrics", default="headline",
                   help="headline (the schema's labelled metrics with a direction), all, or a comma list")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text")


def _resolve(ref: str, results_dir: Path, stored: set[str]) -> str:
    from ..run.environment import resolve_ref
    commit = resolve_ref(ref, Path.cwd())
    if commit and commit in stored:
        return commit
    matches = sorted(c for c in stored if c.startswith(ref) or (commit and c == commit))
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise CompareError(f"'{ref}' matches several stored commits: {', '.join(m[:12] for m in matches)}")
    if commit:
        raise CompareError(f"'{ref}' is commit {commit[:12]}, which has no results under {results_dir}")
    raise CompareError(f"'{ref}': git does not know it and no stored commit starts with it")


def comparison_for(ref_a: str, ref_b: str, *, results_dir: Path, machine: str | None = None,
                   thresholds=(), metrics: list[str] | None = None):
    from ..analysis.compare import compare_records
    from ..run.environment import machine_info
    from ..run.store import StoreWarning, iter_records

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        records = [r for r in iter_records(results_dir, strict_versions=False) if r.commit]
    if not records:
        raise CompareError(f"no result records under {results_dir} (run `pytest benches -m quick` first)")
    stored = {r.commit for r in records}
    a, b = _resolve(ref_a, results_dir, stored), _resolve(ref_b, results_dir, stored)
    fps_a = {r.machine_fingerprint for r in records if r.commit == a}
    fps_b = {r.machine_fingerprint for r in records if r.commit == b}
    both = fps_a & fps_b
    if machine is None:
        here = machine_info().fingerprint
        if here in both:
            machine = here
        elif len(both) == 1:
            machine = next(iter(both))
        elif not both:
            raise CompareError(f"no machine has results of both {a[:12]} ({', '.join(sorted(fps_a))}) and "
                               f"{b[:12]} ({', '.join(sorted(fps_b))}): timings of different machines are not "
                               f"compared")
        else:
            raise CompareError(f"several machines have results of both commits: pass --machine "
                               f"({', '.join(sorted(both))})")
    elif machine not in both:
        raise CompareError(f"machine {machine} lacks results of {a[:12] if machine not in fps_a else b[:12]}")
    base = [r for r in records if r.commit == a and r.machine_fingerprint == machine]
    cur = [r for r in records if r.commit == b and r.machine_fingerprint == machine]
    history = [r for r in records if r.machine_fingerprint == machine and r.commit != b]
    comp = compare_records(base, cur, thresholds=thresholds, metrics=metrics, baseline_name=a[:12],
                           current_name=b[:12], history=history)
    return comp, machine


def run(args) -> int:
    from ..analysis.thresholds import parse_threshold
    from ..records import metric_specs
    from . import comparison as C

    try:
        thresholds = []
        for s in args.compare_fail:
            try:
                thresholds.append(parse_threshold(s))
            except ValueError as e:
                raise CompareError(f"--compare-fail {e}") from None
        specs = metric_specs("telemetry")
        if args.metrics == "headline":
            metrics = None
        elif args.metrics == "all":
            metrics = [n for n, s in specs.items() if s.get("x-better") in ("lower", "higher")]
        else:
            metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
            bad = [m for m in metrics if m not in specs]
            if bad:
                raise CompareError(f"--metrics: unknown metric '{bad[0]}'")
        comp, machine = comparison_for(args.ref_a, args.ref_b, results_dir=Path(args.results_dir),
                                       thresholds=thresholds, metrics=metrics)
    except (CompareError, ValueError) as e:
        print(f"compare: {e}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps({"machine": machine, **dataclasses.asdict(comp), "failures": C.regression_lines(comp)},
                         indent=1, default=str))
    elif args.format == "markdown":
        print(f"### Comparison {comp.baseline} -> {comp.current} on `{machine}`\n")
        print(C.table(comp, tablefmt="github"))
        for f in C.regression_lines(comp):
            print(f"- REGRESSION: {f}")
    else:
        print(f"machine {machine}")
        print(C.text(comp))
    return 1 if comp.failed else 0
