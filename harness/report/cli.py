"""`research-bench SUBCOMMAND ...` (also `python -m llm_research_bench.harness`, and `python -m harness` in a
checkout): tools over the results store.

Each subcommand lives in its own module, which provides `add_arguments(parser)` and `run(args) -> int`
(and optionally HELP); register a new one by adding a line to SUBCOMMANDS. Modules are imported only when
their subcommand runs. A module that passes arguments it does not know on to another program (`continuous`
hands them to pytest) provides `main(argv) -> int` instead of `run`: it gets its raw arguments (its
`add_arguments` still serves --help).
Exit status: 0, 1 (compare: a regression), 2 (a usage error, one line naming the fix),
3 (an unexpected error, i.e. a bug: one line; RESEARCH_BENCH_DEBUG=1 shows the traceback), 130 (Ctrl-C).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

#: Set to show the traceback of an unexpected error (a bug) instead of its one-line message.
DEBUG_ENV = "RESEARCH_BENCH_DEBUG"

#: name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "compare": (f"{__package__}.compare_cmd", "compare stored results of two commits (deltas, noise tests, --compare-fail)"),
    "report": (f"{__package__}.html_cmd", "write the self-contained HTML report of the results store"),
    "export": (f"{__package__}.export_cmd", "export stored results for Bencher or github-action-benchmark"),
    "list": (f"{__package__}.list_cmd", "list the stored commits, machines and saved names"),
    "continuous": (f"{__package__}.continuous_cmd", "interleaved A/B of two commits on this machine (asv continuous "
                                                    "style), exit 1 on a regression"),
}


def read_for_output(command: str, out: str, results_dir: str, *, example: str):
    """For a command that writes `out` from the store: check `out` can be written (before any work), read the
    store and print what the read skipped, one line per kind. Returns the StoreRead, or None after printing the
    one-line usage error (the caller exits 2)."""
    from llm_research_bench.engine.atomic import check_writable
    from ..run.store import StoreError, read_store
    try:
        check_writable(out, example=example)
    except OSError as e:
        print(f"{command}: --out {e}", file=sys.stderr)
        return None
    try:
        read = read_store(results_dir)
    except (StoreError, OSError) as e:
        print(f"{command}: {e}", file=sys.stderr)
        return None
    for line in read.skipped.lines():
        print(f"{command}: {line}", file=sys.stderr)
    return read


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--version"]:
        from .. import PLUGIN_VERSION
        print(f"research-bench (llm-research-bench) {PLUGIN_VERSION}")
        return 0
    p = argparse.ArgumentParser(prog="research-bench", description="Tools over the research-bench results store.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        if argv and argv[0] not in ("-h", "--help"):
            p.print_usage(sys.stderr)
            print(f"research-bench: unknown command '{argv[0]}'; choose from {', '.join(SUBCOMMANDS)}",
                  file=sys.stderr)
            return 2
        p.print_help()
        return 0 if argv else 2
    name = argv[0]
    module = importlib.import_module(SUBCOMMANDS[name][0])
    sp = argparse.ArgumentParser(prog=f"research-bench {name}",
                                 description=getattr(module, "HELP", SUBCOMMANDS[name][1]))
    module.add_arguments(sp)
    try:
        if hasattr(module, "main"):
            if any(a in ("-h", "--help") for a in argv[1:]):
                sp.parse_args(["--help"])                       # prints the help and exits 0
            return int(module.main(argv[1:]) or 0)
        args = sp.parse_args(argv[1:])
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print(f"research-bench {name}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 -- the last resort: one line, never a traceback, unless asked for
        if os.environ.get(DEBUG_ENV):
            raise
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"research-bench {name}: unexpected {type(e).__name__}: {msg} -- this is a bug: please report it "
              f"({DEBUG_ENV}=1 shows the traceback)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
