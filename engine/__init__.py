"""The streaming local-LLM research engine. `engine.research(question, ...)` is the public entry."""
from engine.pipeline import QuestionError, ResearchFailed, ResearchSession, research

__all__ = ["research", "ResearchSession", "ResearchFailed", "QuestionError"]
__version__ = "0.1.0"
