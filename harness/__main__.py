"""`python -m llm_research_bench.harness` (and `python -m harness` in a checkout): the harness's commands over
the results store, commands/cli.py. Installed, the same command is the `research-bench` console script."""
import sys

from llm_research_bench.harness.commands.cli import main

if __name__ == "__main__":
    sys.exit(main())
