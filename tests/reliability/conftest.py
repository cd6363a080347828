"""Fixtures of the bad-input suite: a one-passage corpus, the engine CLI on a scripted backend, a pytester bench."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llm_research_bench.engine import pipeline, telemetry
from tests.harness.conftest import Bench, pinned_profiles
from tests.reliability.bad_input import ScriptedBackendDouble


@pytest.fixture
def corpus_file(tmp_path) -> Path:
    f = tmp_path / "passages.jsonl"
    f.write_text(json.dumps({"id": "p1", "text": "Mitochondria change shape before the cell dies."}) + "\n")
    return f


@pytest.fixture
def scripted(monkeypatch):
    """The engine CLI's backend replaced by ScriptedBackendDouble (returns a setter for `during`)."""
    made: list[ScriptedBackendDouble] = []
    state = {"during": None}

    def fake_make_backend(name, model, **kw):
        made.append(ScriptedBackendDouble(state["during"]))
        return made[-1]

    monkeypatch.setattr(pipeline, "make_backend", fake_make_backend)
    monkeypatch.delenv(telemetry.HASH_KEY_ENV, raising=False)

    def set_during(fn):
        state["during"] = fn
    set_during.made = made
    return set_during


@pytest.fixture
def bench(pytester, monkeypatch) -> Bench:
    for k in ("RESEARCH_PROFILES", "RESEARCH_BENCH_PROFILES", "GITHUB_STEP_SUMMARY", "RESEARCH_BENCH_RESULTS_DIR", "RESEARCH_BENCH_MACHINE_ID"):
        monkeypatch.delenv(k, raising=False)
    # Wide enough that no summary line wraps: these tests match whole lines.
    monkeypatch.setenv("COLUMNS", "400")
    for k in list(os.environ):
        if k.startswith("RB_DOUBLE_"):
            monkeypatch.delenv(k)
    pinned = pytester.path / "pinned-budgets.toml"
    pinned.write_text(pinned_profiles())
    monkeypatch.setenv("RESEARCH_BENCH_PROFILES", str(pinned))
    return Bench(pytester)
