"""`research-bench list`: per machine, the commits the results store holds (dirty-tree runs apart), their branch,
saved names, sessions, records and when."""
from __future__ import annotations

import json
import sys
from collections import defaultdict

from .cli import add_store_arguments, read_for_output


def add_arguments(p) -> None:
    add_store_arguments(p)
    p.add_argument("--format", choices=("text", "json"), default="text")


def rows(records, machine: str | None = None) -> list[dict]:
    """One row per machine and commit (clean and dirty apart), newest first within a machine."""
    from ..analysis.compare import saved_as
    from ..analysis.measures import commit_key, is_measurement
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for r in records:
        if machine is None or r.machine_fingerprint == machine:
            groups[(r.machine_fingerprint, commit_key(r))].append(r)
    out = [dict(machine=fp, machine_class=sorted({r.machine_class for r in recs})[-1], commit=key,
                full_commit=recs[0].commit, dirty=bool(recs[0].dirty),
                branch=next((r.branch for r in reversed(recs) if r.branch), None),
                names=sorted({n for n in map(saved_as, recs) if n}),
                sessions=len({(r.extra or {}).get("session_id") for r in recs}), records=len(recs),
                measured=sum(1 for r in recs if is_measurement(r)), first=min(r.timestamp for r in recs),
                last=max(r.timestamp for r in recs))
           for (fp, key), recs in groups.items()]
    return sorted(out, key=lambda x: (x["machine"], x["last"]), reverse=True)


def run(args) -> int:
    from ..report import layout
    read = read_for_output(args)
    table = rows(read.records, args.machine)
    if args.format == "json":
        print(json.dumps(table, indent=1))
        return 0
    if not table:
        print(f"list: no result records under {args.results_dir}"
              + (f" for machine {args.machine}" if args.machine else ""), file=sys.stderr)
        return 0
    body = [[t["machine"], t["commit"], t["branch"] or "-", ", ".join(t["names"]) or "-", t["sessions"],
             f"{t['measured']}/{t['records']}", t["last"][:19].replace("T", " ")] for t in table]
    # Within the terminal's width (120 columns piped): branch and names wrap first, then the machine.
    print(layout.table(body, ["machine", "commit", "branch", "saved as", "sessions", "measured/records",
                              "last run (UTC)"], wrappable=(0, 2, 3)))
    return 0
