"""The research-bench pytest plugin (harness.plugin) and the tools around its results store."""
from __future__ import annotations

try:
    from importlib.metadata import PackageNotFoundError, version as _version
    PLUGIN_VERSION = _version("llm-research-bench")
except PackageNotFoundError:  # running from a checkout that was never installed
    PLUGIN_VERSION = "0.1.0+checkout"

#: The bench question: PubMedQA's lace-plant question (its abstract is in the default corpus).
DEFAULT_QUESTION = ("Do mitochondria play a role in remodelling lace plant leaves during programmed cell "
                    "death?")
