"""The research-bench harness: the pytest plugin that benchmarks the engine, and the tools over its results
store (installed as `llm_research_bench.harness`)."""

#: The bench question: PubMedQA's lace-plant question (its abstract is in the default corpus).
DEFAULT_QUESTION = ("Do mitochondria play a role in remodelling lace plant leaves during programmed cell "
                    "death?")
