"""What one run is asked to do (RunRequest) and what happened to it (RunOutcome), before any judgement.
Statuses: completed, failed (the engine reported a failure), timed_out, interrupted (Ctrl-C, SIGTERM), crashed (an
isolated child died without a result), error (the run could not start)."""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from ..records import DEFAULT_RUNNER

COMPLETED, FAILED, TIMED_OUT, INTERRUPTED, CRASHED, ERROR = (
    "completed", "failed", "timed_out", "interrupted", "crashed", "error")
#: Fields that live in one process only: an isolated child loads its corpus by path and makes its own sink.
LOCAL_FIELDS = ("corpus", "system_info", "on_progress")


@dataclass
class RunRequest:
    """One run, from the plugin to the engine, in this process or in a child. `research_kwargs` are
    engine.research's own keyword arguments (early_exit, retrieval, store_text, model, ...), passed as they are."""
    question: str
    profile: Any                        # an engine Profile
    backend: Any = "llamacpp"           # a backend name, or (in-process only) a Backend object
    corpus: Any = None                  # a Corpus (in-process only)
    corpus_path: str | None = None      # the path an isolated child loads (None: the engine's default corpus)
    research_kwargs: dict = field(default_factory=dict)
    runner: str = DEFAULT_RUNNER        # "module:function" with engine.research's signature
    timeout_s: float | None = None      # None: the profile's timeout_s; 0: no timeout
    memray_file: str | None = None
    system_info: dict | None = None
    on_progress: Callable[[dict], None] | None = None   # live progress dicts (run/inprocess.py)

    @property
    def effective_timeout(self) -> float:
        return float(self.profile.timeout_s if self.timeout_s is None else self.timeout_s)

    def engine_kwargs(self) -> dict:
        """The keyword arguments of the engine call (the question aside)."""
        corpus = self.corpus if self.corpus is not None else self.corpus_path
        info = {} if self.system_info is None else {"system_info": self.system_info}
        return {"profile": self.profile, "backend": self.backend, "corpus": corpus, **self.research_kwargs, **info}

    def to_json(self) -> dict:
        """This request as the JSON an isolated child reads back with `from_json`."""
        doc = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in LOCAL_FIELDS}
        backend = self.backend if isinstance(self.backend, str) else getattr(self.backend, "name", "?")
        return doc | {"profile": dataclasses.asdict(self.profile), "backend": backend,
                      "timeout_s": self.effective_timeout}

    @classmethod
    def from_json(cls, doc: dict, **local: Any) -> "RunRequest":
        from llm_research_bench.engine.profiles import Budget, Profile
        prof = dict(doc["profile"])
        prof["budgets"] = {k: Budget(**v) for k, v in (prof.get("budgets") or {}).items()}
        return cls(**{**doc, "profile": Profile(**prof)}, **local)


@dataclass
class RunOutcome:
    """What happened to one run; `exception`: what the caller re-raises once it is recorded (timeout, Ctrl-C)."""
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
    memory_check: dict | None = None     # how --research-enforce-memory counted (isolated runs)


def resolve_runner(spec: str) -> Callable[..., Any]:
    mod, _, attr = spec.partition(":")
    if not mod or not attr:
        raise ValueError(f"runner '{spec}': expected 'module:function'")
    return getattr(importlib.import_module(mod), attr)


def first_line(exc: BaseException) -> str:
    s = str(exc).strip()
    return f"{type(exc).__name__}: {s.splitlines()[0]}" if s else type(exc).__name__
