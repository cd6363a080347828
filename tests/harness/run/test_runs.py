"""A bench run's life through `research_bench.run`: rounds and warm-up, hard timeouts that keep the data,
isolated child processes (crash, OOM kill, memory enforcement), memray captures. The engine is replaced by
tests/harness/doubles.py:replay_research_double (a test double replaying recorded telemetry)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

QUICK_TIMEOUT_1S = """
[profiles.quick]
timeout_s = 1
"""


def test_rounds_record_a_warmup_and_summarize_the_median(bench, monkeypatch):
    monkeypatch.setenv("RB_DOUBLE_TIMES", "30,13,15,14")
    bench.run_bench()
    r = bench.run("-m", "quick", "--research-rounds", "3")
    assert r.ret == 0
    recs = bench.records()
    assert [(x.round, x.warmup) for x in recs] == [(0, True), (1, False), (2, False), (3, False)]
    assert all(x.extra["runner"] == "tests.harness.doubles:replay_research_double" for x in recs)
    r.stdout.fnmatch_lines(["*run*quick*3+1w*14.0 ±1.0 s / 45 s*"])


def test_a_failed_run_is_recorded_with_its_error(bench, monkeypatch):
    monkeypatch.setenv("RB_DOUBLE_MODE", "fail")
    bench.run_bench()
    r = bench.run("-m", "quick")
    assert r.ret == 1
    r.stdout.fnmatch_lines(["*quick: run failed: RuntimeError: llama.cpp: failed to decode*"])
    (rec,) = bench.records()
    assert rec.outcome == "failed" and rec.telemetry["success"] is False and not rec.target_met


def test_a_user_error_before_the_run_is_raised_not_recorded(bench, monkeypatch):
    monkeypatch.setenv("RB_DOUBLE_MODE", "question_error")
    bench.run_bench()
    r = bench.run("-m", "quick")
    assert r.ret == 1
    r.stdout.fnmatch_lines(["*: the question is empty: pass the question to research as text"])
    assert "Traceback" not in r.stdout.str() and "During handling" not in r.stdout.str()
    assert bench.records() == []


@pytest.mark.parametrize("marker,via", [("pipeline", "pytest-timeout"), ("", "harness")])
def test_a_timed_out_run_is_stored_with_its_telemetry(bench, monkeypatch, marker, via):
    monkeypatch.setenv("RB_DOUBLE_MODE", "sleep")
    monkeypatch.setenv("RB_DOUBLE_SLEEP", "20")
    f = bench.profiles_file(QUICK_TIMEOUT_1S)
    bench.pytester.makepyfile(test_bench=f"""
        import pytest
        {'pytestmark = pytest.mark.' + marker if marker else ''}

        def test_run(research_bench, profile):
            research_bench.run()

        def test_after():
            pass
    """)
    r = bench.run("-m", "quick or not quick", "--research-profile", "quick", "--research-profiles-file", str(f))
    r.assert_outcomes(failed=1, passed=1)
    r.stdout.fnmatch_lines(["*quick: timed out (profile timeout 1 s)*"])
    (rec,) = bench.records()
    assert rec.outcome == "timed_out" and not rec.target_met
    assert rec.telemetry["timed_out"] is True and rec.telemetry["success"] is False
    assert rec.extra["timeout_via"] == via
    assert rec.telemetry["metrics"]["execution_time_s"] < 5


def test_isolated_run_completes_in_a_child(bench):
    bench.run_bench()
    r = bench.run("-m", "quick", "--research-isolate")
    assert r.ret == 0, r.stdout.str()
    (rec,) = bench.records()
    assert rec.extra["isolated"] is True and rec.target_met and rec.extra["observed_peak_mb"] > 0


@pytest.mark.parametrize("mode,cause", [
    ("segv", "crashed with SIGSEGV (a fault in native code, e.g. the model runtime)"),
    ("sigkill", "killed by SIGKILL, not sent by the harness: most likely an out-of-memory kill"),
])
def test_a_crash_in_the_child_is_a_recorded_failed_run_and_the_session_goes_on(bench, monkeypatch, mode, cause):
    monkeypatch.setenv("RB_DOUBLE_MODE", mode)
    bench.pytester.makepyfile(test_bench="""
        def test_run(research_bench, profile):
            research_bench.run()

        def test_after():
            pass
    """)
    r = bench.run("-k", "quick or after", "--research-isolate")
    r.assert_outcomes(failed=1, passed=1)
    (rec,) = bench.records()
    assert rec.outcome == "crashed" and rec.telemetry is None and not rec.target_met
    assert cause in rec.extra["cause"] and cause in rec.reasons[0]
    assert Path(rec.extra["child_log"]).exists()


def test_enforce_memory_kills_an_isolated_run_over_its_limit(bench, monkeypatch):
    monkeypatch.setenv("RB_DOUBLE_MODE", "alloc")
    monkeypatch.setenv("RB_DOUBLE_ALLOC_MB", "600")
    monkeypatch.setenv("RB_DOUBLE_SLEEP", "5")
    f = bench.profiles_file("[profiles.quick.budgets.linux-x86_64-2c]\ntime_s = [10, 45]\nmemory_mb = 400\n")
    bench.run_bench()
    r = bench.run("-m", "quick", "--research-isolate", "--research-enforce-memory", "--research-profiles-file", str(f))
    assert r.ret == 1
    (rec,) = bench.records()
    assert rec.outcome == "crashed"
    assert rec.extra["cause"].startswith("killed by the harness: process-tree RSS")
    assert "exceeded the 400 MB limit (--research-enforce-memory counts the run" in rec.extra["cause"]
    assert rec.extra["memory_check"]["run_started"] is True
    assert "memory_over_limit" in rec.extra["reason_codes"]


def test_memray_capture_is_stored_and_names_top_allocators_on_a_memory_failure(bench, monkeypatch):
    monkeypatch.setenv("RB_DOUBLE_MODE", "alloc")
    monkeypatch.setenv("RB_DOUBLE_ALLOC_MB", "48")
    monkeypatch.setenv("RB_DOUBLE_PEAK_MB", "5000")
    bench.run_bench()
    r = bench.run("-m", "quick", "--research-memray")
    assert r.ret == 1
    r.stdout.fnmatch_lines(["*quick: memory peak 5000 MB > 4096 MB limit (+22 %)*",
                            "*top allocators at the high-water mark (memray):*",
                            "*48.0 MB in 1 allocation(s): replay_research_double (*doubles.py:*"])
    (rec,) = bench.records()
    cap = Path(rec.extra["memray_capture"])
    assert cap.exists() and cap.is_relative_to(bench.results)
    assert any("doubles.py" in line for line in rec.extra["memray_top"])


def test_an_isolated_run_times_out_in_the_child_and_keeps_its_telemetry(bench, monkeypatch):
    monkeypatch.setenv("RB_DOUBLE_MODE", "sleep")
    monkeypatch.setenv("RB_DOUBLE_SLEEP", "20")
    f = bench.profiles_file(QUICK_TIMEOUT_1S)
    bench.run_bench()
    r = bench.run("-m", "quick", "--research-isolate", "--research-profiles-file", str(f))
    assert r.ret == 1
    (rec,) = bench.records()
    assert rec.outcome == "timed_out" and rec.extra["timeout_via"] == "child"
    assert rec.telemetry["timed_out"] is True and rec.telemetry["metrics"]["execution_time_s"] < 5


def test_an_isolated_runs_memory_counts_extra_processes_like_a_local_ollama_server(monkeypatch, tmp_path):
    """The parent samples the child's tree plus the processes the run uses (engine.memory's Ollama server pids)."""
    import subprocess
    import sys

    from llm_research_bench.engine.profiles import get_profile
    from llm_research_bench.harness.run.request import RunRequest
    from llm_research_bench.harness.run.isolated import run_isolated

    server = subprocess.Popen([sys.executable, "-c", "import time; b = bytearray(300 * 2**20); "
                               "b[::4096] = b'1' * len(b[::4096]); time.sleep(30)"])
    try:
        time.sleep(1.0)
        monkeypatch.setenv("RB_DOUBLE_MODE", "sleep")
        monkeypatch.setenv("RB_DOUBLE_SLEEP", "1")
        req = RunRequest(question="q", profile=get_profile("quick"),
                         runner="tests.harness.doubles:replay_research_double")
        alone = run_isolated(req, workdir=tmp_path)
        with_server = run_isolated(req, workdir=tmp_path, extra_pids=[server.pid])
    finally:
        server.kill()
    assert alone.status == with_server.status == "completed"
    assert with_server.observed_peak_mb - alone.observed_peak_mb > 250


def test_an_isolated_run_reloads_the_warmup_corpus_in_the_child(bench):
    bench.pytester.makepyfile(test_bench="""
        import pytest
        from llm_research_bench.harness.run.warmup import Warmup

        @pytest.fixture(scope="session")
        def bench_warmup():
            return Warmup(corpus=object(), corpus_path=None, seconds=0.0, index_cache_hit=True, system_info={})

        def test_run(research_bench, profile):
            research_bench.run()
    """)
    assert bench.run("-m", "quick", "--research-isolate").ret == 0
    (rec,) = bench.records()
    assert rec.extra["isolated"] is True


def test_a_run_request_reaches_an_isolated_child_as_it_was_asked():
    from llm_research_bench.engine.profiles import get_profile
    from llm_research_bench.harness.run.request import RunRequest

    prof = get_profile("quick")
    req = RunRequest(question="q", profile=prof, corpus=object(), corpus_path="corpus.jsonl",
                     research_kwargs={"early_exit": False, "model": "m"}, system_info={}, on_progress=print)
    doc = req.to_json()
    assert "corpus" not in doc and "on_progress" not in doc and "system_info" not in doc
    back = RunRequest.from_json(json.loads(json.dumps(doc)))
    assert back.profile == prof and back.research_kwargs == {"early_exit": False, "model": "m"}
    assert (back.question, back.corpus_path, back.timeout_s, back.backend) == ("q", "corpus.jsonl", prof.timeout_s,
                                                                               "llamacpp")


@pytest.mark.parametrize("isolate", [False, True])
def test_engine_knobs_reach_the_engine_as_they_are(bench, tmp_path, monkeypatch, isolate):
    seen = tmp_path / "kwargs.json"
    monkeypatch.setenv("RB_SPY_FILE", str(seen))
    bench.pytester.makepyfile(test_bench="""
        import json, os
        import pytest
        from tests.harness.doubles import replay_research_double

        def spy(question, **kwargs):
            with open(os.environ["RB_SPY_FILE"], "w") as fh:
                json.dump({k: v for k, v in kwargs.items() if k in ("early_exit", "model", "store_text")}, fh)
            return replay_research_double(question, **kwargs)

        @pytest.fixture
        def research_runner():
            return "test_bench:spy"

        def test_run(research_bench, profile):
            research_bench.run(early_exit=False, model="tiny", rounds=1, warmup_runs=0, extra={"variant": "v"})
    """)
    monkeypatch.syspath_prepend(str(bench.pytester.path))
    args = ["--research-isolate"] if isolate else []
    assert bench.run("-m", "quick", *args).ret == 0
    assert json.loads(seen.read_text()) == {"early_exit": False, "model": "tiny"}
    (rec,) = bench.records()
    assert rec.extra["variant"] == "v" and rec.extra["rounds"] == 1 and rec.extra["isolated"] is isolate
    assert rec.extra["runner"] == "test_bench:spy"
