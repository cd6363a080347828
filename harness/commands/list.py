"""`research-bench list`: per machine, the commits the results store holds (dirty-tree runs apart), their branch,
saved names, sessions, records and when."""
from __future__ import annotations

import dataclasses
import json
import sys
from collections import defaultdict
from dataclasses import dataclass

from .cli import add_store_arguments


@dataclass
class Row:
    """One machine's runs of one commit (clean, or dirty-tree)."""
    machine: str
    machine_class: str
    commit: str
    full_commit: str
    dirty: bool
    branch: str | None
    names: list[str]
    sessions: int
    records: int
    measured: int
    first: str
    last: str


def add_arguments(p) -> None:
    add_store_arguments(p)
    p.add_argument("--format", choices=("text", "json"), default="text")


def rows(records, machine: str | None = None) -> list[Row]:
    """One row per machine and commit (clean and dirty apart), newest first within a machine."""
    from ..analysis.compare import saved_as
    from ..analysis.measures import commit_key, is_measurement
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for r in records:
        if machine is None or r.machine_fingerprint == machine:
            groups[(r.machine_fingerprint, commit_key(r))].append(r)
    out = [Row(fp, sorted({r.machine_class for r in recs})[-1], key, recs[0].commit, bool(recs[0].dirty),
               next((r.branch for r in reversed(recs) if r.branch), None),
               sorted({n for n in map(saved_as, recs) if n}), len({(r.extra or {}).get("session_id") for r in recs}),
               len(recs), sum(1 for r in recs if is_measurement(r)), min(r.timestamp for r in recs),
               max(r.timestamp for r in recs))
           for (fp, key), recs in groups.items()]
    return sorted(out, key=lambda x: (x.machine, x.last), reverse=True)


def run(args) -> int:
    from ..report import layout
    from .cli import read_for_output
    read = read_for_output("list", "-", args.results_dir, example="")
    if read is None:
        return 2
    table = rows(read.records, args.machine)
    if args.format == "json":
        print(json.dumps([dataclasses.asdict(t) for t in table], indent=1))
        return 0
    if not table:
        print(f"list: no result records under {args.results_dir}"
              + (f" for machine {args.machine}" if args.machine else ""), file=sys.stderr)
        return 0
    body = [[t.machine, t.commit, t.branch or "-", ", ".join(t.names) or "-", t.sessions,
             f"{t.measured}/{t.records}", t.last[:19].replace("T", " ")] for t in table]
    # Within the terminal's width (120 columns piped): branch and names wrap first, then the machine.
    print(layout.table(body, ["machine", "commit", "branch", "saved as", "sessions", "measured/records",
                              "last run (UTC)"], wrappable=(0, 2, 3)))
    return 0
