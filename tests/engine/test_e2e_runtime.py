"""End to end on the embedded model: counters from llama.cpp itself, the thread choice
under a real busy-loop process, and the engine's own timeout (library, CLI, and inside a prompt evaluation)."""
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm_research_bench import engine
from llm_research_bench.engine.backends import Message
from llm_research_bench.engine.backends.llamacpp import LlamaCppBackend
from llm_research_bench.engine.corpus import DEFAULT_PUBMEDQA, load_corpus
from llm_research_bench.engine.deadline import Deadline, RunTimeout
from llm_research_bench.engine.profiles import get_profile
from llm_research_bench.engine.telemetry import validation_errors

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SHORT = dataclasses.replace(get_profile("quick"), claim_tokens=24, synthesis_tokens=24)
# two batches of two passages: short prompts, so the run stays well within its timeout on a loaded machine
TINY = dataclasses.replace(SHORT, retrieve_k=4, batch_size=2, min_batch_size=2, max_batch_size=2)


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(DEFAULT_PUBMEDQA).slice(12)


def counters(tel):
    return [(c["kind"], c["prompt_tokens"], c["prompt_tokens_evaluated"], c["tokens_generated"], c["tokens_sampled"])
            for c in tel["traces"]["calls"]]


def test_token_counters_come_from_llama_cpp_and_never_exceed_what_was_sampled(corpus):
    """Calls capped at 24 tokens: a call stopped by its limit stores exactly 24; none stores more than it sampled;
    the greedy counters repeat exactly on a second run."""
    q = corpus.questions[0].question
    t = engine.research(q, profile=SHORT, corpus=corpus, timeout_s=0).telemetry
    calls = t["traces"]["calls"]
    assert len(calls) >= 2 and validation_errors(t) == []
    for c in calls:
        assert "counter_mismatch" not in c, c
        assert c["tokens_generated"] <= c["tokens_sampled"] <= c["tokens_generated"] + 1
        assert (c["tokens_sampled"] == c["tokens_generated"] + 1) == (c["finish_reason"] == "stop")
        if c["finish_reason"] == "length":
            assert c["tokens_generated"] == 24, c
        assert c["chunks"] <= c["tokens_generated"]
        assert 0 < c["prompt_tokens_evaluated"] <= c["prompt_tokens"]
    assert any(c["finish_reason"] == "length" for c in calls)
    assert all(c["prompt_tokens_evaluated"] < c["prompt_tokens"] for c in calls[1:])     # the KV prefix is reused
    m = t["metrics"]
    assert m["tokens_generated"] == sum(c["tokens_generated"] for c in calls)
    assert m["prompt_tokens_evaluated"] == sum(c["prompt_tokens_evaluated"] for c in calls)
    assert m["cpu_time_s"] > 0 and t["threads"]["source"] == "measured"
    again = engine.research(q, profile=SHORT, corpus=corpus, timeout_s=0).telemetry
    assert counters(again) == counters(t)


def test_greedy_output_and_counters_do_not_depend_on_the_thread_count(corpus):
    """The thread count now follows the machine's load; what a run generates and counts must not."""
    msgs = [Message("user", corpus.passages[0].text[:1500] + "\n\nSummarise this in two sentences.")]
    seen = []
    for n in (1, 2):
        b = LlamaCppBackend("smollm2-135m", context_window=2048, n_threads=n)
        try:
            text = "".join(b.stream(msgs, max_tokens=48))
            st = b.last_stats
            seen.append((text, st.prompt_tokens_evaluated, st.tokens_generated, st.tokens_sampled))
            assert b.threads == {"n_threads": n, "source": "requested", "reason": f"{n} threads requested by the caller"}
        finally:
            b.close()
    assert seen[0] == seen[1]


def test_with_one_core_held_by_a_busy_loop_the_run_takes_the_free_cpus(corpus):
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        t = engine.research(corpus.questions[1].question, profile=TINY, corpus=corpus).telemetry
    finally:
        hog.kill()
        hog.wait()
    th = t["threads"]
    assert t["success"] and not t["timed_out"] and validation_errors(t) == []
    assert th["source"] == "measured" and th["other_busy_cores"] >= 0.5
    assert th["n_threads"] == t["model"]["n_threads"] <= max(1, th["allowed_cpus"] - 1)
    assert "busy" in th["reason"]


def test_the_library_stops_the_run_at_its_timeout_with_partial_telemetry(corpus):
    t0 = time.monotonic()
    with pytest.raises(RunTimeout, match="passed its 1.5 s timeout") as ei:
        engine.research(corpus.questions[2].question, profile="quick", corpus=corpus, early_exit=False, timeout_s=1.5)
    t = ei.value.research_telemetry
    assert validation_errors(t) == [] and t["timed_out"] and not t["success"]
    assert t["early_exit"]["reason"] == "timeout" and t["errors"][0].startswith("RunTimeout: ")
    assert t["metrics"]["execution_time_s"] < 1.5 + 1.0 and time.monotonic() - t0 < 1.5 + 5
    if t["traces"]["calls"]:
        assert t["traces"]["calls"][-1]["finish_reason"] is None


class StepClock:
    """Test double: a clock that stands still for its first `still` readings, then jumps an hour ahead."""

    def __init__(self, still: int):
        self.n, self.still = 0, still

    def __call__(self):
        self.n += 1
        return 0.0 if self.n <= self.still else 3600.0


def test_a_long_prompt_evaluation_is_stopped_inside_llama_cpp():
    b = LlamaCppBackend("smollm2-135m", context_window=4096)
    try:
        long = [Message("user", "The mitochondria divide and fuse. " * 300)]
        b.deadline = Deadline(45, clock=StepClock(still=2))    # passes once llama.cpp has started evaluating
        with pytest.raises(RunTimeout, match=r"prompt evaluation \(stopped inside llama.cpp\)"):
            for _ in b.stream(long, max_tokens=8):
                pass
        assert b.last_stats.finish_reason is None and b.last_stats.tokens_sampled == 0
        b.deadline = None
        text = "".join(b.stream([Message("user", "Say yes.")], max_tokens=8))      # the context is still usable
        assert text and b.last_stats.finish_reason in ("stop", "length") and b.last_stats.counter_mismatch is None
    finally:
        b.close()


def test_the_cli_stops_at_the_profile_timeout(tmp_path):
    prof = tmp_path / "p.toml"
    prof.write_text("[profiles.quick]\ntimeout_s = 0.5\n")
    out = tmp_path / "t.json"
    r = subprocess.run([sys.executable, "-m", "llm_research_bench.engine", "--profiles-file", str(prof), "run",
                        "Do mitochondria play a role in programmed cell death?", "--closed-book", "--quiet",
                        "--telemetry-out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "passed its 0.5 s timeout" in lines[0] and "Traceback" not in r.stderr
    t = json.loads(out.read_text())
    assert t["timed_out"] and t["early_exit"]["reason"] == "timeout" and validation_errors(t) == []
