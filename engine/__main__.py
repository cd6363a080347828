"""`python -m engine` (from a checkout) and `python -m llm_research_bench.engine`: the engine's command line,
engine/cli.py. Installed, the same command is the `research-engine` console script."""
import sys

from llm_research_bench.engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
