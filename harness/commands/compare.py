"""`research-bench compare REF_A [REF_B]`: the plugin's --compare, offline, over the results store.

REF_A is the baseline, REF_B the current side (default: HEAD). A REF is a name a session was saved under
(--research-save; the newest session of that name), anything git resolves to a commit (HEAD~1, a tag, a SHA),
or the prefix of a commit stored in the results. A commit stands for its clean runs; `REF+dirty` names the runs
made on a dirty tree at that commit (run/refs.py resolves them). Exit status: 0; 1 when a --compare-fail
threshold is crossed by a change distinguishable from noise; 2 for a usage error.
"""
from __future__ import annotations

import dataclasses
import json
import sys

from ..run.refs import default_results_dir

HELP = "compare stored results of two commits (per-metric deltas, noise tests, --compare-fail)"


def add_arguments(p) -> None:
    p.add_argument("ref_a", metavar="REF_A", help="baseline: a saved name, a git ref or a stored commit prefix "
                                                  "(REF+dirty: that commit's dirty-tree runs)")
    p.add_argument("ref_b", metavar="REF_B", nargs="?", default="HEAD", help="current side (default: HEAD)")
    p.add_argument("--results-dir", default=str(default_results_dir()),
                   help="results store to read (default: $RESEARCH_BENCH_RESULTS_DIR or results/ at the git top)")
    p.add_argument("--machine", default=None,
                   help="machine fingerprint (default: this machine, else the one machine with results of both)")
    p.add_argument("--compare-fail", action="append", default=[], metavar="METRIC:PCT",
                   help="exit 1 when METRIC got worse by more than PCT %% and the change is distinguishable "
                        "from noise, e.g. execution_time_s:10%%")
    p.add_argument("--metrics", default="headline",
                   help="headline (the schema's labelled metrics with a direction), all, or a comma list")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text")


def thresholds(specs: list[str], option: str) -> list:
    """The --compare-fail specs, parsed; ValueError names the option and the fault."""
    from ..analysis.thresholds import parse_threshold
    out = []
    for s in specs:
        try:
            out.append(parse_threshold(s))
        except ValueError as e:
            raise ValueError(f"{option} {e}") from None
    return out


def metrics(arg: str) -> list[str] | None:
    """--metrics as the metric names to compare (None: the headline metrics)."""
    from ..records import metric_specs
    specs = metric_specs("telemetry")
    if arg == "headline":
        return None
    if arg == "all":
        return [n for n, s in specs.items() if s.get("x-better") in ("lower", "higher")]
    names = [m.strip() for m in arg.split(",") if m.strip()]
    bad = [m for m in names if m not in specs]
    if bad:
        raise ValueError(f"--metrics: unknown metric '{bad[0]}'")
    return names


def print_comparison(comp, fmt: str, machine: str, skipped: list[str]) -> None:
    from ..report import comparison
    if fmt == "json":
        print(json.dumps({"machine": machine, **dataclasses.asdict(comp), "failures": comparison.regression_lines(comp),
                          "skipped": skipped}, indent=1, default=str))
    elif fmt == "markdown":
        print(f"### Comparison {comp.baseline} -> {comp.current} on `{machine}`\n")
        print(comparison.table(comp, tablefmt="github"))
        for f in comparison.regression_lines(comp):
            print(f"- REGRESSION: {f}")
    else:
        print(f"machine {machine}")
        print(comparison.text(comp))


def run(args) -> int:
    from ..analysis.compare import compare_records
    from ..run.refs import stored_sides
    from ..run.store import Skipped, StoreError, read_store

    skipped = Skipped()
    try:
        limits, names = thresholds(args.compare_fail, "--compare-fail"), metrics(args.metrics)
        read = read_store(args.results_dir)
        skipped = read.skipped
        sides = stored_sides(args.ref_a, args.ref_b, read.records, results_dir=args.results_dir, machine=args.machine)
        comp = compare_records(sides.base, sides.current, thresholds=limits, metrics=names,
                               baseline_name=sides.labels[0], current_name=sides.labels[1], history=sides.history)
    except (StoreError, ValueError) as e:            # RefError is a ValueError
        for line in [*skipped.lines(), str(e)]:
            print(f"compare: {line}", file=sys.stderr)
        return 2
    for line in skipped.lines():
        print(f"compare: {line}", file=sys.stderr)
    print_comparison(comp, args.format, sides.machine, skipped.lines())
    return 1 if comp.failed else 0
