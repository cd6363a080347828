"""`research-bench compare REF_A [REF_B]`: the plugin's --compare, offline, over the results store.

REF_A is the baseline, REF_B the current side (default: HEAD). A REF is a name a session was saved under
(--research-save; the newest session of that name), anything git resolves to a commit (HEAD~1, a tag, a
SHA), or the prefix of a commit stored in the results. A commit stands for its clean runs; `REF+dirty` names
the runs made on a dirty tree at that commit. Exit status: 0, 1 when a --compare-fail threshold is crossed
by a change distinguishable from noise, 2 for a usage error.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from collections import Counter
from pathlib import Path

from ..run.store import default_results_dir

HELP = "compare stored results of two commits (per-metric deltas, noise tests, --compare-fail)"


class CompareError(ValueError):
    pass


def add_arguments(p) -> None:
    p.add_argument("ref_a", metavar="REF_A", help="baseline: a saved name, a git ref or a stored commit prefix "
                                                  "(REF+dirty: that commit's dirty-tree runs)")
    p.add_argument("ref_b", metavar="REF_B", nargs="?", default="HEAD", help="current side (default: HEAD)")
    p.add_argument("--results-dir", default=default_results_dir(),
                   help="results store to read (default: $RESEARCH_BENCH_RESULTS_DIR or ./results)")
    p.add_argument("--machine", default=None,
                   help="machine fingerprint (default: this machine, else the one machine with results of both)")
    p.add_argument("--compare-fail", action="append", default=[], metavar="METRIC:PCT",
                   help="exit 1 when METRIC got worse by more than PCT %% and the change is distinguishable "
                        "from noise, e.g. execution_time_s:10%%")
    p.add_argument("--metrics", default="headline",
                   help="headline (the schema's labelled metrics with a direction), all, or a comma list")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text")


def _side(ref: str, results_dir: Path, records: list) -> tuple[str, object]:
    """(label, predicate over records) of one REF: a saved name, or a commit's clean (or +dirty) runs."""
    from ..analysis.baseline import saved_as, saved_session
    if any(saved_as(r) == ref for r in records):
        chosen = {}
        for fp in {r.machine_fingerprint for r in records}:
            chosen.update({r.record_id: r for r in saved_session([r for r in records if r.machine_fingerprint == fp],
                                                                  ref)})
        return f"'{ref}'", lambda r: r.record_id in chosen
    dirty = ref.endswith("+dirty")
    base = ref[: -len("+dirty")] if dirty else ref
    side = [r for r in records if bool(r.dirty) == dirty]
    commit = _resolve(base, results_dir, {r.commit for r in side}, "+dirty" if dirty else "")
    return commit[:12] + ("+dirty" if dirty else ""), lambda r: r.commit == commit and bool(r.dirty) == dirty


def _resolve(ref: str, results_dir: Path, stored: set[str], what: str = "") -> str:
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
        raise CompareError(f"'{ref}' is commit {commit[:12]}, which has no {'dirty-tree' if what else 'clean'} results "
                           f"under {results_dir}" + ("" if what else f" (its dirty-tree runs: '{ref}+dirty')"))
    raise CompareError(f"'{ref}': no session was saved under this name, git does not know it and no stored commit "
                       f"starts with it")


def comparison_for(ref_a: str, ref_b: str, *, results_dir: Path, machine: str | None = None,
                   thresholds=(), metrics: list[str] | None = None, skipped=None):
    """(Comparison, machine) of two stored commits. `skipped` (a run.store.Skipped) receives what the store read
    left out, for the caller to print."""
    from ..analysis.compare import add_power, compare_records
    from ..run.environment import machine_info
    from ..run.store import StoreError, read_store

    try:
        read = read_store(results_dir)
    except StoreError as e:
        raise CompareError(str(e)) from None
    if skipped is not None:
        skipped.merge(read.skipped)
    records = [r for r in read.records if r.commit]
    if not records:
        raise CompareError(f"no result records under {results_dir} (run `pytest benches -m quick` first)")
    (a, in_a), (b, in_b) = _side(ref_a, results_dir, records), _side(ref_b, results_dir, records)
    fps_a = {r.machine_fingerprint for r in records if in_a(r)}
    fps_b = {r.machine_fingerprint for r in records if in_b(r)}
    both = fps_a & fps_b
    if machine is None:
        here = machine_info().fingerprint
        if here in both:
            machine = here
        elif len(both) == 1:
            machine = next(iter(both))
        elif not both:
            raise CompareError(f"no machine has results of both {a} ({', '.join(sorted(fps_a))}) and "
                               f"{b} ({', '.join(sorted(fps_b))}): timings of different machines are not "
                               f"compared")
        else:
            raise CompareError(f"several machines have results of both commits: pass --machine "
                               f"({', '.join(sorted(both))})")
    elif machine not in both:
        raise CompareError(f"machine {machine} lacks results of {a if machine not in fps_a else b}")
    base = [r for r in records if in_a(r) and r.machine_fingerprint == machine]
    cur = [r for r in records if in_b(r) and r.machine_fingerprint == machine]
    history = [r for r in records if r.machine_fingerprint == machine and not in_b(r)]
    comp = add_power(compare_records(base, cur, thresholds=thresholds, metrics=metrics, names=(a, b),
                                     history=history))
    return comp, machine


def run(args) -> int:
    from ..analysis.thresholds import parse_threshold
    from ..records import metric_specs
    from ..run.store import Skipped
    from . import comparison as C

    skipped = Skipped()
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
                                       thresholds=thresholds, metrics=metrics, skipped=skipped)
    except (CompareError, ValueError) as e:
        for line in skipped.lines():
            print(f"compare: {line}", file=sys.stderr)
        print(f"compare: {e}", file=sys.stderr)
        return 2
    for line in skipped.lines():
        print(f"compare: {line}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps({"machine": machine, **dataclasses.asdict(comp), "failures": C.regression_lines(comp),
                          "skipped": skipped.lines()}, indent=1, default=str))
    elif args.format == "markdown":
        print(f"### Comparison {comp.baseline} -> {comp.current} on `{machine}`\n")
        print(C.table(comp, tablefmt="github"))
        for f in C.regression_lines(comp):
            print(f"- REGRESSION: {f}")
    else:
        print(f"machine {machine}")
        print(C.text(comp))
    return 1 if comp.failed else 0
