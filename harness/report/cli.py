"""`research-bench SUBCOMMAND ...` (also `python -m llm_research_bench.harness`, and `python -m harness` in a
checkout): tools over the results store.

Each subcommand lives in its own module, which provides `add_arguments(parser)` and `run(args) -> int`
(and optionally HELP); register a new one by adding a line to SUBCOMMANDS. Modules are imported only when
their subcommand runs. A module that passes arguments it does not know on to another program (`continuous`
hands them to pytest) provides `main(argv) -> int` instead of `run`: it gets its raw arguments (its
`add_arguments` still serves --help).
"""
from __future__ import annotations

import argparse
import importlib
import sys

#: name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "compare": (f"{__package__}.compare_cmd", "compare stored results of two commits (deltas, noise tests, --compare-fail)"),
    "report": (f"{__package__}.html_cmd", "write the self-contained HTML report of the results store"),
    "export": (f"{__package__}.export_cmd", "export stored results for Bencher or github-action-benchmark"),
    "continuous": (f"{__package__}.continuous_cmd", "interleaved A/B of two commits on this machine (asv continuous "
                                                    "style), exit 1 on a regression"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="research-bench", description="Tools over the research-bench results store.")
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
    if hasattr(module, "main"):
        if any(a in ("-h", "--help") for a in argv[1:]):
            sp.parse_args(["--help"])                       # prints the help and exits 0
        return int(module.main(argv[1:]) or 0)
    return int(module.run(sp.parse_args(argv[1:])) or 0)


if __name__ == "__main__":
    sys.exit(main())
