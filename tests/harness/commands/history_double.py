"""Test double of the engine for the history commands' tests (test_history.py): the recorded quick run of
tests/harness/doubles.py, its TPOT scaled by the RB_DOUBLE_TIMES noise, plus TEST_DOUBLE_TPOT_ADD_S seconds per
sampled token where its side's engine package defines it (so a commit can add 4 ms per token)."""
from __future__ import annotations

from tests.harness.doubles import recorded_telemetry, replay_research_double

TPOT_S = recorded_telemetry()["metrics"]["tpot_s"]


def replay(question, *, profile, **kwargs):
    import llm_research_bench.engine as engine
    session = replay_research_double(question, profile=profile, **kwargs)
    m, add = session.telemetry["metrics"], getattr(engine, "TEST_DOUBLE_TPOT_ADD_S", 0.0)
    m["tpot_s"] = TPOT_S * m["execution_time_s"] / 10.0 + add
    m["execution_time_s"] += add * m["tokens_generated"]
    return session
