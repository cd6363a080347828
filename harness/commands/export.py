"""`research-bench export`: stored results for Bencher or github-action-benchmark, or every measured run as CSV
or JSON Lines (report/exports.py builds them), to a file or (`--out -`) to standard output."""
from __future__ import annotations

import json
import sys

from ..report.exports import DIRECTIONS, FORMATS, GAB_TOOL, ExportError, export, write
from .cli import UsageError, add_store_arguments, read_for_output, usage


def add_arguments(p) -> None:
    p.add_argument("--format", required=True, choices=FORMATS, dest="fmt",
                   help="bencher (Bencher Metric Format), github-action-benchmark (custom tool JSON), csv or jsonl "
                        "(every measured run, one row per metric)")
    p.add_argument("--direction", choices=tuple(DIRECTIONS), default=None,
                   help="github-action-benchmark only: smaller (customSmallerIsBetter, the default) or bigger "
                        "(customBiggerIsBetter); one file holds one direction")
    p.add_argument("--out", required=True, help="file to write; - for standard output")
    add_store_arguments(p, "machine fingerprint (default: the newest record's machine; csv and jsonl: every machine)")
    p.add_argument("--include-neutral", action="store_true",
                   help="bencher only: also export metrics without a direction (x-better none)")


def run(args) -> int:
    if args.fmt != "github-action-benchmark" and args.direction:
        raise UsageError("--direction applies to github-action-benchmark only (Bencher keeps the direction in its "
                         "thresholds)")
    read = read_for_output(args, args.out, example="export.json")
    with usage(ExportError):
        doc = export(read.records, args.fmt, direction=args.direction, machine=args.machine,
                     include_neutral=args.include_neutral)
    try:
        if args.out == "-":
            sys.stdout.write(doc if isinstance(doc, str) else json.dumps(doc, indent=2) + "\n")
        path = "standard output" if args.out == "-" else write(args.out, doc)
    except BrokenPipeError:
        raise
    except OSError as e:
        raise UsageError(f"cannot write {args.out} ({e.strerror or e}): choose another --out") from None
    if isinstance(doc, str):
        what = f"{doc.count(chr(10)) - (1 if args.fmt == 'csv' else 0)} rows (one per measured run and metric)"
    else:
        n = sum(len(v) for v in doc.values()) if isinstance(doc, dict) else len(doc)
        what = f"{n} measures"
    tool = f" (tool: {GAB_TOOL[args.direction or 'smaller']})" if args.fmt == "github-action-benchmark" else ""
    print(f"export: wrote {path}: {what}, {args.fmt}{tool}", file=sys.stderr if args.out == "-" else sys.stdout)
    return 0
