"""The research-bench harness: the pytest plugin that benchmarks the engine, and the tools over its results
store (installed as `llm_research_bench.harness`)."""
from __future__ import annotations


def __getattr__(name: str):
    """PLUGIN_VERSION, looked up on first use (the pytest11 entry point imports this package in every run)."""
    if name == "PLUGIN_VERSION":
        from llm_research_bench import __version__
        globals()["PLUGIN_VERSION"] = __version__
        return __version__
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: The bench question: PubMedQA's lace-plant question (its abstract is in the default corpus).
DEFAULT_QUESTION = ("Do mitochondria play a role in remodelling lace plant leaves during programmed cell "
                    "death?")
