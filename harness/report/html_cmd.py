"""`research-bench report` (`python -m llm_research_bench.harness report`): the self-contained HTML report of
the results store (report/html.py renders it)."""
from __future__ import annotations

from ..analysis import measures
from ..run.store import default_results_dir
from .html import write_report

HELP = "write the self-contained HTML report of the results store"


def add_arguments(p) -> None:
    """The `report` subcommand's options (argparse parser `p`)."""
    p.add_argument("--out", default="report.html", help="HTML file to write (default: report.html)")
    p.add_argument("--results-dir", default=default_results_dir(),
                   help="results store to read (default: $RESEARCH_BENCH_RESULTS_DIR or ./results)")
    p.add_argument("--machine", default=None,
                   help="machine fingerprint to report on (default: the machine of the newest record)")
    p.add_argument("--title", default="LLM research bench report")


def run(args) -> int:
    import sys
    from ..run.store import load_records
    records = load_records(args.results_dir)
    if not records:
        print(f"report: no result records under {args.results_dir}; the page says so (run `make bench` to "
              f"make some)", file=sys.stderr)
    path = write_report(records, args.out, machine=args.machine, title=args.title)
    n = sum(measures.is_measurement(r) for r in records)
    print(f"report: wrote {path} ({path.stat().st_size:,} bytes) from {len(records)} records ({n} measured)")
    return 0
