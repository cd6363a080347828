"""`research-bench list`: what the results store holds -- per machine, the commits measured there (a dirty
tree's runs apart from the commit's clean ones), with their branch, the names sessions were saved under
(--research-save), how many sessions and records, and when."""
from __future__ import annotations

import json
import sys
from collections import defaultdict

from ..run.store import default_results_dir

HELP = "list the stored commits, machines and saved names"


def add_arguments(p) -> None:
    p.add_argument("--results-dir", default=default_results_dir(),
                   help="results store to read (default: $RESEARCH_BENCH_RESULTS_DIR or ./results)")
    p.add_argument("--machine", default=None, help="only this machine fingerprint")
    p.add_argument("--format", choices=("text", "json"), default="text")


def rows(records, machine: str | None = None) -> list[dict]:
    """One row per machine and commit (clean and dirty apart), newest first within a machine."""
    from ..analysis.baseline import saved_as
    from ..analysis.measures import commit_key, is_measurement
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for r in records:
        if machine is None or r.machine_fingerprint == machine:
            groups[(r.machine_fingerprint, commit_key(r))].append(r)
    out = []
    for (fp, key), recs in groups.items():
        stamps = sorted(r.timestamp for r in recs)
        out.append({"machine": fp, "machine_class": sorted({r.machine_class for r in recs})[-1],
                    "commit": key, "full_commit": recs[0].commit, "dirty": bool(recs[0].dirty),
                    "branch": next((r.branch for r in reversed(recs) if r.branch), None),
                    "names": sorted({n for n in map(saved_as, recs) if n}),
                    "sessions": len({(r.extra or {}).get("session_id") for r in recs}),
                    "records": len(recs), "measured": sum(1 for r in recs if is_measurement(r)),
                    "first": stamps[0], "last": stamps[-1]})
    out.sort(key=lambda x: (x["machine"], x["last"]), reverse=True)
    return out


def run(args) -> int:
    from tabulate import tabulate

    from ..run.store import read_store
    read = read_store(args.results_dir)
    table = rows(read.records, args.machine)
    if args.format == "json":
        print(json.dumps(table, indent=1))
        return 0
    if not table:
        print(f"list: no result records under {args.results_dir}" + (f" for machine {args.machine}"
                                                                      if args.machine else ""), file=sys.stderr)
        return 0
    body = [[t["machine"], t["commit"], t["branch"] or "-", ", ".join(t["names"]) or "-", t["sessions"],
             f"{t['measured']}/{t['records']}", t["last"][:19].replace("T", " ")] for t in table]
    print(tabulate(body, headers=["machine", "commit", "branch", "saved as", "sessions", "measured/records",
                                  "last run (UTC)"], tablefmt="simple", disable_numparse=True))
    for line in read.skipped.lines():
        print(f"list: {line}", file=sys.stderr)
    return 0
