"""`research-bench compare REF_A [REF_B]`: the plugin's --compare over the results store (run/refs.py resolves
REFs). Exit status: 0; 1 when a --compare-fail threshold is crossed beyond noise; 2 for a usage error."""
from __future__ import annotations

import sys

from .cli import UsageError, add_store_arguments, read_for_output, usage


def add_arguments(p) -> None:
    p.add_argument("ref_a", metavar="REF_A", help="baseline: a saved name, a git ref or a stored commit prefix "
                                                  "(REF+dirty: that commit's dirty-tree runs)")
    p.add_argument("ref_b", metavar="REF_B", nargs="?", default="HEAD", help="current side (default: HEAD)")
    add_store_arguments(p, "machine fingerprint (default: this machine, else the one machine with results of both)")
    p.add_argument("--compare-fail", action="append", default=[], metavar="METRIC:PCT",
                   help="exit 1 when METRIC (a name or a table's label) got worse by more than PCT %% and the change "
                        "is distinguishable from noise, e.g. execution_time_s:10%% or 'mem peak:5%%'")
    p.add_argument("--metrics", default="headline",
                   help="headline (time, TTFT, TPOT, decode tok/s, mem peak, cit. valid, cit. grounded), all (every "
                        "metric with a direction), or a comma list of names or labels, e.g. 'time,mem peak'")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text")


def thresholds(specs: list[str], option: str) -> list:
    """The --compare-fail specs, parsed; a UsageError names the option and the fault."""
    from ..analysis.names import parse_threshold
    with usage(ValueError, prefix=f"{option} "):
        return [parse_threshold(s) for s in specs]


def metrics(arg: str) -> list[str]:
    """--metrics as metric names: `headline`, `all` (those with a direction), or a comma list of names or labels."""
    from ..analysis.names import HEADLINE, resolve_all
    from ..records import metric_specs
    if arg == "headline":
        return list(HEADLINE)
    if arg == "all":
        return [n for n, s in metric_specs("telemetry").items() if s.get("x-better") in ("lower", "higher")]
    with usage(ValueError, prefix="--metrics: "):
        return resolve_all([m for m in arg.split(",") if m.strip()])


def run(args) -> int:
    from ..analysis.compare import add_power, compare_records
    from ..report import comparison
    from ..report.layout import wrap
    from ..run.refs import stored_sides
    try:
        limits, names = thresholds(args.compare_fail, "--compare-fail"), metrics(args.metrics)
    except UsageError as e:            # an unknown metric lists the valid names: wrapped to the terminal
        print(*wrap(f"compare: {e}"), sep="\n", file=sys.stderr)
        return 2
    read = read_for_output(args)
    with usage(ValueError):            # RefError is a ValueError
        sides = stored_sides(args.ref_a, args.ref_b, read.records, results_dir=args.results_dir, machine=args.machine)
        comp = add_power(compare_records(sides.base, sides.current, thresholds=limits, metrics=names,
                                         names=sides.labels, history=sides.history))
    if args.format == "json":
        print(comparison.as_json(comp, {"machine": sides.machine}, {"skipped": read.skipped.lines()}))
    elif args.format == "markdown":
        print(comparison.markdown(comp, [f"### Comparison {comp.baseline} -> {comp.current} on `{sides.machine}`"]))
    else:
        print(f"machine {sides.machine}", comparison.text(comp), sep="\n")
    return 1 if comp.failed else 0
