"""The environment variables the project reads, in one place and under one prefix, `RESEARCH_BENCH_`.

    RESEARCH_BENCH_PROFILES        a profiles TOML overlaying the built-in profiles (old: RESEARCH_PROFILES)
    RESEARCH_BENCH_CACHE_DIR       the index and model cache (default $XDG_CACHE_HOME/llm-research-bench; old:
                                   RESEARCH_CACHE_DIR)
    RESEARCH_BENCH_WEIGHTS         shipped: load the embedded model's file as shipped, not its CPU copy
                                   (engine/backends/weights.py)
    RESEARCH_BENCH_RESULTS_DIR     the results store (default <rootdir>/results)
    RESEARCH_BENCH_MACHINE_ID      pins the machine fingerprint results are filed under
    RESEARCH_BENCH_FALLBACK_DIR    where a record goes that the results store cannot take (default: the temp folder)
    RESEARCH_BENCH_QUALITY_SAMPLE  N[,N_OFF]: the quality bench's sample sizes, for a smoke run (old: QUALITY_SAMPLE)
    RESEARCH_BENCH_QUALITY_CLAIM_ARMS  1: the quality bench also runs the other claim mode and free claims (no grammar)
    RESEARCH_BENCH_DECISION_SAMPLE N[,N_SINGLE_SHOT]: the decision bench's sample sizes (default: the smoke size)
    RESEARCH_BENCH_DECISION_LOG    a JSON-lines file the decision bench appends every run's decision material to
    RESEARCH_BENCH_DECISION_SKIP   decision logs (os.pathsep-separated) whose completed runs the bench does not repeat
    RESEARCH_BENCH_COMMIT_URL      a URL template linking commits in reports, e.g. .../commit/{commit}

An old name still works, with one DeprecationWarning naming the new one. Standard variables the project
honours as they are (OLLAMA_HOST, XDG_CACHE_HOME, GITHUB_STEP_SUMMARY, CI commit variables) keep their names.
Light: the standard library only (the pytest plugin reads these at start-up).
"""
from __future__ import annotations

import os
import warnings

PREFIX = "RESEARCH_BENCH_"
#: Every variable, by its name after the prefix -> the old name it replaces (None: new).
VARIABLES: dict[str, str | None] = {
    "PROFILES": "RESEARCH_PROFILES",
    "CACHE_DIR": "RESEARCH_CACHE_DIR",
    "RESULTS_DIR": None,
    "MACHINE_ID": None,
    "FALLBACK_DIR": None,
    "QUALITY_SAMPLE": "QUALITY_SAMPLE",
    "QUALITY_CLAIM_ARMS": None,
    "COMMIT_URL": None,
    "DECISION_SAMPLE": None,
    "DECISION_LOG": None,
    "DECISION_SKIP": None,
    "CALIBRATION_BLOCKS": "RESEARCH_CALIBRATION_BLOCKS",
    "CALIBRATION_MAX_ROUNDS": None,
    "WEIGHTS": None,
}
_warned: set[str] = set()


def name(key: str) -> str:
    """The variable's full name: name("PROFILES") -> "RESEARCH_BENCH_PROFILES"."""
    if key not in VARIABLES:
        raise KeyError(f"{key}: not one of the project's environment variables ({', '.join(VARIABLES)})")
    return PREFIX + key


def env(key: str, default: str | None = None) -> str | None:
    """The value of RESEARCH_BENCH_<key> (an empty value counts as unset), else of its old name, with a
    DeprecationWarning once per process."""
    v = os.environ.get(name(key), "").strip()
    if v:
        return v
    old = VARIABLES[key]
    if old and os.environ.get(old, "").strip():
        if old not in _warned:
            _warned.add(old)
            warnings.warn(f"${old} is deprecated: set ${name(key)} instead", DeprecationWarning, stacklevel=2)
        return os.environ[old].strip()
    return default
