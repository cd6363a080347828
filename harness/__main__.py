"""`python -m llm_research_bench.harness` (and `python -m harness` in a checkout): the harness's commands over
the results store, report/cli.py. Installed, the same command is the `research-bench` console script."""
import sys

from llm_research_bench.harness.report.cli import main

if __name__ == "__main__":
    sys.exit(main())
