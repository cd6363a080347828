"""The streaming local-LLM research engine. `research(question, ...)` is the public entry.

Installed as `llm_research_bench.engine` (the directory `engine/` of the repository): a distinct import name, so
a project's own top-level `engine` package is never shadowed. Importing this package is cheap: the pipeline
(numpy, torch, llama.cpp) loads on first use of `research` and its companions."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["research", "ResearchSession", "ResearchFailed", "QuestionError", "RunTimeout"]

if TYPE_CHECKING:
    from .deadline import RunTimeout
    from .pipeline import QuestionError, ResearchFailed, ResearchSession, research


def __getattr__(name: str) -> Any:
    if name in ("research", "ResearchSession", "ResearchFailed", "QuestionError"):
        from . import pipeline
        return getattr(pipeline, name)
    if name == "RunTimeout":
        from .deadline import RunTimeout
        return RunTimeout
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
