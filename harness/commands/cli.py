"""`research-bench COMMAND ...` (also `python -m llm_research_bench.harness`): each command's module gives
`add_arguments(parser)` and `run(args) -> int` (PASS_THROUGH: the arguments it does not know go to `args.pytest_args`).
Exit status: 0; 1 a regression; 2 a usage error (one line naming the fix); 3 a bug (one line; RESEARCH_BENCH_DEBUG=1
shows the traceback); 130 Ctrl-C; 141 a closed pipe."""
from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
from contextlib import contextmanager

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


class UsageError(Exception):
    """Printed as '<command>: <message>', exit status 2."""


@contextmanager
def usage(*errors: type[Exception], prefix: str = ""):
    """Any of `errors` raised in the block is a usage error, its message after `prefix`."""
    try:
        yield
    except errors as e:
        raise UsageError(f"{prefix}{e}") from None


def add_store_arguments(p, machine: str = "only this machine fingerprint") -> None:
    from ..run.refs import default_results_dir
    p.add_argument("--results-dir", default=str(default_results_dir()),
                   help="results store to read (default: $RESEARCH_BENCH_RESULTS_DIR or results/ at the git top)")
    p.add_argument("--machine", default=None, help=machine)


def add_session_arguments(p, rounds: int, each: str, formats: tuple[str, ...] = ("text", "json")) -> None:
    """The options of the commands that run bench sessions (continuous, run, find); count() checks the numbers."""
    p.add_argument("--research-rounds", "--rounds", dest="rounds", metavar="N",
                   help=f"measured rounds a {each} (default {rounds})")
    p.add_argument("--research-warmup-runs", "--warmup-runs", dest="warmup_runs", metavar="N",
                   help=f"warm-up runs a {each} (default 1)")
    p.add_argument("--research-results-dir", "--results-dir", dest="results_dir", metavar="DIR",
                   help="where records go (default: $RESEARCH_BENCH_RESULTS_DIR or results/ at the git top)")
    p.add_argument("--format", choices=formats, default="text")


def count(option: str, v: str | None, default: int | None = None, minimum: int = 1) -> int | None:
    """A whole-number option's value, `default` when not given."""
    if v is None:
        return default
    try:
        x = int(v)
    except ValueError:
        raise UsageError(f"{option}: expected a whole number, got {v!r}") from None
    if x < minimum:
        raise UsageError(f"{option}: must be at least {minimum}, got {v!r}")
    return x


#: Progress and the sessions' output go to standard error; a command's result alone to stdout.
progress = functools.partial(print, file=sys.stderr, flush=True)


def read_for_output(args, out: str = "-", example: str = ""):
    """The store read (what it skipped said on stderr) once `out` is known writable."""
    from llm_research_bench.engine.atomic import check_writable
    from ..run.store import StoreError, read_store
    if out != "-":
        with usage(OSError, prefix="--out "):
            check_writable(out, example=example)
    with usage(StoreError, OSError):
        read = read_store(args.results_dir)
    for line in read.skipped.lines():
        print(f"{args.command}: {line}", file=sys.stderr)
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
    args.command, args.pytest_args = name, rest
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
    except UsageError as e:
        print(f"{argv[0]}: {e}", file=sys.stderr)
        return 2
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
