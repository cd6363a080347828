"""The engine's run-time logic without a model: the thread choice from given CPU readings, the run
deadline on an injected clock, and the reconciliation of llama.cpp's counters (readings taken from real calls)."""
import subprocess
import sys
import time

import pytest

from llm_research_bench.engine.backends.llamacpp import PerfReading, reconcile
from llm_research_bench.engine.deadline import Deadline, RunTimeout
from llm_research_bench.engine.threads import CpuReading, choose_threads, read_cpus, requested


def reading(other: float, allowed: int = 2, physical: int = 2, quota: float | None = None) -> CpuReading:
    return CpuReading(allowed, physical, quota, other, 0.25)


# ---- thread choice ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("other, n", [(0.0, 2), (0.2, 2), (0.25, 2), (0.3, 1), (1.0, 1), (1.25, 1), (1.3, 1),
                                      (2.0, 1), (3.5, 1)])
def test_threads_on_two_cpus_follow_the_other_processes_load(other, n):
    assert choose_threads(reading(other)).n_threads == n


def test_threads_on_a_larger_machine_leave_the_taken_cores():
    assert choose_threads(reading(2.9, allowed=8, physical=8)).n_threads == 5
    assert choose_threads(reading(0.1, allowed=16, physical=8)).n_threads == 8      # capped at physical cores
    assert choose_threads(reading(0.0, allowed=8, physical=8, quota=2.5)).n_threads == 2   # cgroup quota


def test_the_reason_names_the_inputs():
    c = choose_threads(reading(1.02))
    assert c.source == "measured" and "1 of 2 CPUs free" in c.reason and "1.02 cores busy" in c.reason
    d = c.as_dict()
    assert d["n_threads"] == 1 and d["allowed_cpus"] == 2 and d["other_busy_cores"] == 1.02 and d["window_s"] == 0.25
    assert "no CPU free" in choose_threads(reading(2.0)).reason
    assert choose_threads(reading(0.0)).reason.startswith("2 of 2 CPUs free")
    assert requested(3).as_dict() == {"n_threads": 3, "source": "requested", "reason": "3 threads requested by the caller"}


def test_a_real_busy_loop_process_reads_as_load():
    """A busy-loop child (another process, not this one) is other processes' load in the reading."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        r = read_cpus(0.5)
    finally:
        hog.kill()
        hog.wait()
    assert r.other_busy_cores >= 0.5 and r.allowed_cpus >= 1 and r.window_s >= 0.5


# ---- deadline ---------------------------------------------------------------------------------------------------

class Clock:
    """Test double: a clock that moves only when told."""

    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_deadline_on_an_injected_clock():
    clock = Clock()
    d = Deadline(45, clock=clock)
    assert d.remaining() == 45 and not d.expired()
    d.check("synthesis")
    clock.t += 44.9
    assert not d.expired()
    clock.t += 0.1
    assert d.expired()
    with pytest.raises(RunTimeout, match=r"passed its 45 s timeout during the claims of evidence batch 2: raise"):
        d.check("the claims of evidence batch 2")


def test_an_index_build_extends_the_deadline():
    clock = Clock()
    d = Deadline(45, clock=clock)
    clock.t += 60
    d.extend(60)
    assert not d.expired() and d.remaining() == pytest.approx(45)
    clock.t += 45
    with pytest.raises(RunTimeout, match=r"45 s timeout \(\+60.0 s for building the index\)"):
        d.check("retrieval")


@pytest.mark.parametrize("seconds", [None, 0, -1])
def test_no_deadline(seconds):
    clock = Clock()
    d = Deadline(seconds, clock=clock)
    clock.t += 1e6
    assert d.remaining() is None and not d.expired()
    d.check("anything")


# ---- llama.cpp counters -----------------------------------------------------------------------------------------
# Readings as llama.cpp 0.3.36 reported them for SmolLM2-135M (perf counts 0 as 1; its timer then reads 0).

def perf(n_p, n, t_p=1.0, t=1.0):
    return PerfReading(n_p, t_p, n, t)


@pytest.mark.parametrize("first, end, n_sample, eog, chunks, finished, expected", [
    # a call stopped by its token limit stores exactly the limit (it sampled 40, decoded 39)
    (perf(17, 1, t=0.0), perf(17, 39), 40, False, 40, True, (17, 40, 40, 39)),
    # a call ended by EOS does not count the EOS token (sampled 13, decoded the 12 before it)
    (perf(9, 1, t=0.0), perf(9, 12), 13, True, 12, True, (9, 13, 12, 12)),
    # fully cached prompt: llama-cpp-python re-evaluates its last token alone and llama.cpp counts it in n_eval;
    # it is a prompt token, not a decode
    (perf(1, 1, t_p=0.0), perf(1, 40, t_p=0.0), 40, False, 40, True, (1, 40, 40, 39)),
    # interrupted during the prompt evaluation: what was evaluated, nothing sampled
    (None, perf(1024, 1, t=0.0), 0, False, 0, False, (1024, 0, 0, 0)),
    # interrupted between tokens
    (perf(300, 1, t=0.0), perf(300, 19), 20, False, 20, False, (300, 20, 20, 19)),
], ids=["token-limit", "eos", "one-token-remainder", "stopped-in-prompt-eval", "stopped-between-tokens"])
def test_counters_reconciled(first, end, n_sample, eog, chunks, finished, expected):
    c = reconcile(first=first, end=end, n_sample=n_sample, handed_over=n_sample, last_is_eog=eog,
                  token_chunks=chunks, finished=finished)
    assert (c.prompt_tokens_evaluated, c.tokens_sampled, c.tokens_generated, c.decode_steps) == expected
    assert c.mismatches == ()


def test_disagreeing_counters_are_reported():
    c = reconcile(first=perf(17, 1, t=0.0), end=perf(20, 30), n_sample=41, handed_over=40, last_is_eog=False,
                  token_chunks=45, finished=True)
    assert c.tokens_generated == 41                       # the runtime's own count is kept
    text = "; ".join(c.mismatches)
    assert "sampled 41 tokens, llama-cpp-python handed over 40" in text
    assert "prompt-eval counter moved" in text and "30 decode steps for 41 sampled tokens" in text
    assert "45 streamed chunks" in text


def test_the_abort_flag_is_a_c_callback_reading_one_byte():
    """llama.cpp's abort callback is libc's strlen over a 2-byte buffer: 0 (go on) until set, then 1 (abort)."""
    llama_cpp = pytest.importorskip("llama_cpp")
    from llm_research_bench.engine.backends.llamacpp import _AbortFlag
    f = _AbortFlag(llama_cpp)
    assert f.available and not f.is_set and f.fn(f.data) is False
    f.set()
    assert f.is_set and f.fn(f.data) is True
    f.clear()
    assert f.fn(f.data) is False
