"""`research-bench COMMAND ...` (also `python -m llm_research_bench.harness`): tools over the results store. Each
command's module, imported when it runs, gives `add_arguments(parser)` and `run(args) -> int` (PASS_THROUGH: the
arguments it does not know go to `args.pytest_args`). Exit status: 0; 1 a regression; 2 a usage error (one line
naming the fix); 3 a bug (one line; RESEARCH_BENCH_DEBUG=1 shows the traceback); 130 Ctrl-C; 141 a closed pipe."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

#: Set to show the traceback of an unexpected error (a bug) instead of its one-line message.
DEBUG_ENV = "RESEARCH_BENCH_DEBUG"

#: name (its module's too) -> one-line help
SUBCOMMANDS = {
    "compare": "compare stored results of two commits (deltas, noise tests, --compare-fail)",
    "report": "write the self-contained HTML report of the results store",
    "export": "export stored results for Bencher or github-action-benchmark, or as CSV / JSON Lines",
    "list": "list the stored commits, machines and saved names",
    "continuous": "interleaved A/B of two commits on this machine (asv continuous style), exit 1 on a regression",
    "run": "bench every commit of a range (A..B, a list, --last N) on this machine, each in a worktree",
    "find": "bisect a range for the first commit where a metric got worse (the gate judges each step)",
    "regressions": "the confirmed steps (change points) in the stored history of each series",
}


def add_store_arguments(p, machine: str = "only this machine fingerprint") -> None:
    """--results-dir and --machine, which every command over the store takes."""
    from ..run.refs import default_results_dir
    p.add_argument("--results-dir", default=str(default_results_dir()),
                   help="results store to read (default: $RESEARCH_BENCH_RESULTS_DIR or results/ at the git top)")
    p.add_argument("--machine", default=None, help=machine)


def progress(line: str) -> None:
    """Progress and the sessions' output go to standard error; a command's result alone to stdout."""
    print(line, file=sys.stderr, flush=True)


def read_for_output(command: str, out: str, results_dir: str, *, example: str):
    """The store read (what it skipped said on stderr) once `out` is known writable; None after a usage error."""
    from llm_research_bench.engine.atomic import check_writable
    from ..run.store import StoreError, read_store
    try:
        if out != "-":
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


def _usage(argv: list[str]) -> int:
    """The top-level help (exit 0 when asked for, 2 without a command) or an unknown command (exit 2)."""
    p = argparse.ArgumentParser(prog="research-bench", description="Tools over the research-bench results store.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_ in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    if argv and argv[0] not in ("-h", "--help"):
        p.print_usage(sys.stderr)
        print(f"research-bench: unknown command '{argv[0]}'; choose from {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return 2
    p.print_help()
    return 0 if argv else 2


def _run(name: str, argv: list[str]) -> int:
    module = importlib.import_module(f"{__package__}.{name}")
    through = getattr(module, "PASS_THROUGH", False)
    p = argparse.ArgumentParser(prog=f"research-bench {name}", description=SUBCOMMANDS[name],
                                allow_abbrev=not through)
    module.add_arguments(p)
    args, rest = p.parse_known_args(argv) if through else (p.parse_args(argv), [])
    args.pytest_args = rest
    return int(module.run(args) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--version"]:
        from llm_research_bench import __version__
        print(f"research-bench (llm-research-bench) {__version__}")
        return 0
    if not argv or argv[0] not in SUBCOMMANDS:
        return _usage(argv)
    from llm_research_bench.engine.names import BadName
    try:
        rc = _run(argv[0], argv[1:])
        sys.stdout.flush()                          # a closed pipe shows here, not at the interpreter's exit
        return rc
    except KeyboardInterrupt:
        print(f"research-bench {argv[0]}: interrupted", file=sys.stderr)
        return 130
    except BadName as e:                            # $RESEARCH_BENCH_MACHINE_ID, --machine: a usage error
        print(f"research-bench {argv[0]}: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:                         # `research-bench list | head -1`: exit quietly, as head's writer
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())     # so the interpreter's last flush works
        return 141
    except Exception as e:  # noqa: BLE001 -- the last resort: one line, never a traceback, unless asked for
        if os.environ.get(DEBUG_ENV):
            raise
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"research-bench {argv[0]}: unexpected {type(e).__name__}: {msg} -- this is a bug: please report it "
              f"({DEBUG_ENV}=1 shows the traceback)", file=sys.stderr)
        return 3
