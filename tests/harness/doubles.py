"""Test doubles for the plugin's own tests -- never used by benches.

`replay_research_double` stands in for engine.research: it replays the telemetry recorded from a real quick
run (tests/data/telemetry_quick.json), changed as the environment asks, and mimics the engine's contract
(ResearchFailed with .telemetry for run failures; any other BaseException gets `research_telemetry`
attached, with timed_out set for timeouts). Controlled by environment variables so that an isolated child
process behaves the same:

    RB_DOUBLE_MODE      ok | fail | sleep | segv | sigkill | alloc | question_error
    RB_DOUBLE_TIMES     comma-separated execution_time_s values, used in turn (per process)
    RB_DOUBLE_PEAK_MB   memory_peak_mb to report
    RB_DOUBLE_SLEEP     seconds to sleep in mode sleep (or alloc)
    RB_DOUBLE_ALLOC_MB  megabytes to allocate (and touch) in mode alloc
    RB_DOUBLE_SET       JSON object of metric overrides, e.g. {"claims": 0}

With `on_event` (as engine.research takes it) the double also emits the engine's live events for its recorded
run (phase, retrieved, batch, batch_done with the recorded call, answer chunks), as the engine does.

A test's own copy of the engine (a side of `research-bench continuous` in tests/harness/run/test_continuous.py)
may define TEST_DOUBLE_SLOWDOWN in its engine/__init__.py: the double multiplies execution_time_s by it, so a
test can tell which commit's engine a side really imported.
"""
from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

RECORDED = Path(__file__).resolve().parents[1] / "data" / "telemetry_quick.json"
_calls = {"n": 0}


class SessionDouble:
    def __init__(self, telemetry: dict):
        self.telemetry = telemetry


def recorded_telemetry() -> dict:
    """The recorded run's telemetry with the current metric names, as the engine writes them."""
    from llm_research_bench.harness.records import current_names
    return current_names({"telemetry": json.loads(RECORDED.read_text())})["telemetry"]


def replay_research_double(question, *, profile, **kwargs):
    from llm_research_bench.engine.deadline import RunTimeout
    from llm_research_bench.engine.pipeline import QuestionError, ResearchFailed

    mode = os.environ.get("RB_DOUBLE_MODE", "ok")
    if mode == "question_error":
        raise QuestionError("the question is empty: pass the question to research as text")
    tel = recorded_telemetry()
    tel["run_id"] = uuid.uuid4().hex
    tel["profile"]["name"] = profile.name
    tel["profile"]["timeout_s"] = profile.timeout_s
    m = tel["metrics"]
    times = [float(x) for x in os.environ.get("RB_DOUBLE_TIMES", "").split(",") if x.strip()]
    if times:
        m["execution_time_s"] = times[_calls["n"] % len(times)]
    import llm_research_bench.engine as engine
    m["execution_time_s"] *= getattr(engine, "TEST_DOUBLE_SLOWDOWN", 1.0)
    _calls["n"] += 1
    if os.environ.get("RB_DOUBLE_PEAK_MB"):
        m["memory_peak_mb"] = float(os.environ["RB_DOUBLE_PEAK_MB"])
    m.update(json.loads(os.environ.get("RB_DOUBLE_SET", "{}")))
    _emit_recorded_events(kwargs.get("on_event"), tel)
    t0 = time.perf_counter()
    try:
        if mode == "sleep":
            time.sleep(float(os.environ.get("RB_DOUBLE_SLEEP", "5")))
        elif mode == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif mode == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif mode == "alloc":
            blob = bytearray(int(float(os.environ.get("RB_DOUBLE_ALLOC_MB", "64")) * 2**20))
            for i in range(0, len(blob), 4096):
                blob[i] = 1
            time.sleep(float(os.environ.get("RB_DOUBLE_SLEEP", "0.2")))
            del blob
        elif mode == "fail":
            raise RuntimeError("llama.cpp: failed to decode")
    except BaseException as exc:
        tel["success"] = False
        tel["errors"] = [f"{type(exc).__name__}: {exc}"]
        m["execution_time_s"] = round(time.perf_counter() - t0, 4)
        if isinstance(exc, Exception):
            raise ResearchFailed(str(exc), tel) from exc
        tel["timed_out"] = isinstance(exc, RunTimeout)
        exc.research_telemetry = tel
        raise
    return SessionDouble(tel)


def _emit_recorded_events(on_event, tel: dict) -> None:
    """The engine's live events of the recorded run (a test double of the pipeline's emits)."""
    if on_event is None:
        return
    from llm_research_bench.engine.runlog import CallRecord
    calls = [c for c in (tel.get("traces") or {}).get("calls", [])]
    on_event("phase", {"phase": "plan"})
    on_event("retrieved", {"hits": 24, "cache_hit": True})
    for b, c in enumerate(c for c in calls if c.get("kind") == "claims"):
        on_event("batch", {"batch": b, "size": 8, "novelty": 0.9, "admitted": True})
        on_event("phase", {"phase": "streaming_inference", "batch": b})
        rec = CallRecord(**{k: c.get(k) for k in ("kind", "prompt_tokens", "prompt_tokens_evaluated",
                                                  "tokens_generated", "ttft_s", "e2e_s", "native_prompt_eval_s",
                                                  "native_decode_s", "native_decode_tokens", "chunks",
                                                  "finish_reason")}, complete=True)
        on_event("batch_done", {"batch": b, "claims": 2, "call": rec})
    on_event("phase", {"phase": "synthesis"})
    for _ in range(3):
        on_event("answer_delta", {"text": "yes"})
