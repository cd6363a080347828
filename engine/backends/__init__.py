"""Backends behind one interface (engine.backends.base.Backend).

`BACKEND_NAMES` is the one list of backend names (profiles, the CLI and the pipeline check against it);
`make_backend(name, model, ...)` builds one, importing its module only then. Importing this package stays cheap:
it imports base.py only."""
from __future__ import annotations

from .base import (Backend, BackendError, BackendUnavailable, Choice, ContextTooLarge, GenerationStats, Message,
                   ModelNotFound, StreamInterrupted)

BACKEND_NAMES = ("llamacpp", "ollama")


def make_backend(name: str, model: str, *, context_window: int, timeout_s: float = 60.0) -> Backend:
    if name == "llamacpp":
        from .llamacpp import LlamaCppBackend
        return LlamaCppBackend(model, context_window=context_window)
    if name == "ollama":
        from .ollama_backend import OllamaBackend
        return OllamaBackend(model, context_window=context_window, read_timeout_s=timeout_s)
    raise BackendError(f"unknown backend '{name}': use one of {', '.join(BACKEND_NAMES)}")


__all__ = ["Backend", "BackendError", "BackendUnavailable", "Choice", "ContextTooLarge", "GenerationStats", "Message", "ModelNotFound",
           "StreamInterrupted", "make_backend", "BACKEND_NAMES"]
