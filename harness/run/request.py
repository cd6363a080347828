"""What one run is asked to do (RunRequest) and what happened to it (RunOutcome), before any judgement.

Statuses: completed (the engine returned), failed (the engine reported a failure), timed_out, interrupted
(Ctrl-C, SIGTERM), crashed (an isolated child died without a result), error (the run could not start)."""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from ..records import DEFAULT_RUNNER

COMPLETED, FAILED, TIMED_OUT, INTERRUPTED, CRASHED, ERROR = (
    "completed", "failed", "timed_out", "interrupted", "crashed", "error")


@dataclass
class RunRequest:
    """What to run. `profile` is an engine Profile; `corpus` a Corpus (in-process) or None, `corpus_path` the
    path an isolated child loads (None: the engine's default corpus)."""
    question: str
    profile: Any
    backend: Any = "llamacpp"           # a backend name, or (in-process only) a Backend object
    corpus: Any = None
    corpus_path: str | None = None
    early_exit: bool = True
    retrieval: bool = True
    store_text: bool = False
    system_info: dict | None = None
    research_kwargs: dict = field(default_factory=dict)
    runner: str = DEFAULT_RUNNER        # "module:function" with engine.research's signature
    timeout_s: float | None = None      # None: the profile's timeout_s; 0: no timeout
    memray_file: str | None = None
    on_progress: Callable[[dict], None] | None = None   # live progress dicts (run/progress.py); not sent to a child

    @property
    def effective_timeout(self) -> float:
        return float(self.profile.timeout_s if self.timeout_s is None else self.timeout_s)

    @property
    def backend_name(self) -> str:
        return self.backend if isinstance(self.backend, str) else getattr(self.backend, "name", "?")


@dataclass
class RunOutcome:
    """What happened to one run. `exception` is set when the caller must re-raise after recording
    (a timeout, Ctrl-C, a user error found before the run started)."""
    status: str
    telemetry: dict | None
    error: str | None = None
    cause: str | None = None             # why a child died (signal, OOM, exit status)
    wall_s: float = 0.0                  # the research call as the harness timed it
    isolated: bool = False
    observed_peak_mb: float | None = None
    child_warmup_s: float | None = None
    memray_file: str | None = None
    timeout_via: str | None = None       # pytest-timeout | harness | child | engine | None
    child_log: str | None = None         # a crashed child's output, kept for inspection
    session: Any = None                  # engine ResearchSession (in-process, completed runs)
    exception: BaseException | None = None
    memory_check: dict | None = None     # how --research-enforce-memory counted (isolated runs), stored in extra

    @property
    def timed_out(self) -> bool:
        return self.status == TIMED_OUT


def resolve_runner(spec: str) -> Callable[..., Any]:
    mod, _, attr = spec.partition(":")
    if not mod or not attr:
        raise ValueError(f"runner '{spec}': expected 'module:function'")
    return getattr(importlib.import_module(mod), attr)


def first_line(exc: BaseException) -> str:
    s = str(exc).strip()
    return f"{type(exc).__name__}: {s.splitlines()[0]}" if s else type(exc).__name__


def profile_to_dict(profile: Any) -> dict:
    return dataclasses.asdict(profile)


def profile_from_dict(d: dict) -> Any:
    from llm_research_bench.engine.profiles import Budget, Profile
    d = dict(d)
    d["budgets"] = {k: Budget(**v) for k, v in (d.get("budgets") or {}).items()}
    return Profile(**d)
