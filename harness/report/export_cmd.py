"""`research-bench export` (`python -m llm_research_bench.harness export`): stored results for Bencher or
github-action-benchmark, or every measured run as CSV or JSON Lines (report/exports.py builds them)."""
from __future__ import annotations

from ..run.store import default_results_dir
from .exports import DIRECTIONS, FORMATS, GAB_TOOL, ExportError, export, write

HELP = "export stored results for Bencher or github-action-benchmark, or as CSV / JSON Lines"


def add_arguments(p) -> None:
    """The `export` subcommand's options (argparse parser `p`)."""
    p.add_argument("--format", required=True, choices=FORMATS, dest="fmt",
                   help="bencher (Bencher Metric Format), github-action-benchmark (custom tool JSON), csv or jsonl "
                        "(every measured run, one row per metric)")
    p.add_argument("--direction", choices=tuple(DIRECTIONS), default=None,
                   help="github-action-benchmark only: smaller (customSmallerIsBetter, the default) or bigger "
                        "(customBiggerIsBetter); one file holds one direction")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--results-dir", default=default_results_dir(),
                   help="results store to read (default: $RESEARCH_BENCH_RESULTS_DIR or ./results)")
    p.add_argument("--machine", default=None, help="machine fingerprint (default: the newest record's machine; "
                                                   "csv and jsonl: every machine)")
    p.add_argument("--include-neutral", action="store_true",
                   help="bencher only: also export metrics without a direction (x-better none)")


def run(args) -> int:
    import sys
    from .cli import read_for_output
    if args.fmt != "github-action-benchmark" and args.direction:
        print("export: --direction applies to github-action-benchmark only (Bencher keeps the direction in its "
              "thresholds)", file=sys.stderr)
        return 2
    read = read_for_output("export", args.out, args.results_dir, example="export.json")
    if read is None:
        return 2
    try:
        doc = export(read.records, args.fmt, direction=args.direction, machine=args.machine,
                     include_neutral=args.include_neutral)
    except ExportError as e:
        print(f"export: {e}", file=sys.stderr)
        return 2
    try:
        path = write(args.out, doc)
    except OSError as e:
        print(f"export: cannot write {args.out} ({e.strerror or e}): choose another --out", file=sys.stderr)
        return 2
    if isinstance(doc, str):
        rows = doc.count("\n") - (1 if args.fmt == "csv" else 0)
        print(f"export: wrote {path}: {rows} rows (one per measured run and metric), {args.fmt}")
        return 0
    n = sum(len(v) for v in doc.values()) if isinstance(doc, dict) else len(doc)
    tool = f" (tool: {GAB_TOOL[args.direction or 'smaller']})" if args.fmt == "github-action-benchmark" else ""
    print(f"export: wrote {path}: {n} measures, {args.fmt}{tool}")
    return 0
