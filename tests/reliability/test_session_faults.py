"""Faults injected for real into whole pytest sessions (separate processes): Ctrl-C or SIGTERM mid-bench, two sessions
writing one results store at once, pytest-xdist workers, a model server that is down. Earlier records stay
intact and nothing is lost. The engine is replaced by tests/harness/doubles.py (a test double) except in the
Ollama test, which runs the real engine against a port where no server listens."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from llm_research_bench.harness.run.store import read_store
from tests.harness.conftest import DOUBLES_CONFTEST

ROOT = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path, body: str, doubles: bool = True) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    if doubles:
        (proj / "conftest.py").write_text(DOUBLES_CONFTEST)
    (proj / "test_bench.py").write_text(textwrap.dedent(body))
    return proj


def _env(**kw) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RB_DOUBLE_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(kw)
    return env


def _pytest(proj: Path, results: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(proj), "--research-machine-class",
            "linux-x86_64-2c", "--research-results-dir", str(results), "-q", *args, str(proj)]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_mid_bench_stores_the_run_as_interrupted_and_keeps_earlier_records(tmp_path, sig):
    flag = tmp_path / "started"
    proj = _project(tmp_path, f'''
        import os, pathlib
        def test_a_first(research_bench, profile):
            research_bench.run()

        def test_b_slow(research_bench, profile, monkeypatch):
            monkeypatch.setenv("RB_DOUBLE_MODE", "sleep")
            monkeypatch.setenv("RB_DOUBLE_SLEEP", "60")
            pathlib.Path({str(flag)!r}).write_text("x")
            research_bench.run()
    ''')
    results = tmp_path / "results"
    p = subprocess.Popen(_pytest(proj, results, "-m", "quick", "--research-remeasure", "0"), cwd=proj, env=_env(),
                         stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while not flag.exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.1)
    time.sleep(0.5)
    p.send_signal(sig)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 2, out                    # pytest's "interrupted" exit code (SIGTERM as Ctrl-C: not 143)
    assert "Traceback" not in out and "INTERNALERROR" not in out
    recs = sorted(read_store(results).records, key=lambda r: r.timestamp)
    assert [r.outcome for r in recs] == ["passed", "interrupted"], out
    assert recs[1].telemetry is not None and recs[1].telemetry["success"] is False
    if sig == signal.SIGTERM:                        # the partial telemetry says what stopped the run
        assert recs[1].telemetry["errors"] == ["Terminated: stopped by SIGTERM"]
    assert recs[0].target_met


def test_two_sessions_writing_one_store_at_once_lose_nothing(tmp_path):
    proj = _project(tmp_path, '''
        import pytest
        @pytest.mark.parametrize("i", range(15))
        def test_many(record_result, profile, i):
            from tests.harness.doubles import recorded_telemetry
            tel = recorded_telemetry()
            tel["profile"]["name"] = profile.name
            record_result(tel)
    ''')
    results = tmp_path / "results"
    procs = [subprocess.Popen(_pytest(proj, results, "-m", "quick"), cwd=proj, env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    recs = read_store(results).records
    assert len(recs) == 30 and len({r.record_id for r in recs}) == 30


def test_xdist_workers_store_every_record(tmp_path):
    pytest.importorskip("xdist")
    proj = _project(tmp_path, '''
        import pytest
        @pytest.mark.parametrize("i", range(10))
        def test_many(record_result, profile, i):
            from tests.harness.doubles import recorded_telemetry
            tel = recorded_telemetry()
            tel["profile"]["name"] = profile.name
            record_result(tel)
    ''')
    results = tmp_path / "results"
    r = subprocess.run(_pytest(proj, results, "-n", "2", "-m", "quick"), cwd=proj, env=_env(), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    recs = read_store(results).records
    assert len(recs) == 10
    assert {r.extra.get("xdist_worker") for r in recs} <= {"gw0", "gw1"}
    # the controller summarises its workers' records (reported by path through xdist, no store scan)
    assert "research bench summary" in r.stdout and "10 record(s) appended under" in r.stdout, r.stdout


@pytest.mark.e2e
def test_ollama_down_inside_a_bench_is_a_stored_failed_run_with_a_clear_reason(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proj = _project(tmp_path, '''
        import pytest
        pytestmark = pytest.mark.pipeline
        def test_ollama(research_bench, profile):
            research_bench.run()
    ''', doubles=False)
    (proj / "conftest.py").write_text(textwrap.dedent('''
        import pytest
        from llm_research_bench.harness.run.warmup import Warmup

        @pytest.fixture(scope="session")
        def bench_warmup():
            """No index warm-up: the run fails at the backend, before retrieval."""
            return Warmup(corpus=None, corpus_path=None, seconds=0.0, index_cache_hit=None, system_info={})
    '''))
    results = tmp_path / "results"
    t = time.time()
    r = subprocess.run(_pytest(proj, results, "-m", "quick", "--research-backend", "ollama"), cwd=proj,
                       env=_env(OLLAMA_HOST=f"127.0.0.1:{port}"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "start it with `ollama serve`" in r.stdout, r.stdout
    assert time.time() - t < 60
    (rec,) = read_store(results).records
    assert rec.outcome == "failed" and not rec.target_met
    assert rec.telemetry["backend"] == "ollama" and rec.telemetry["success"] is False
    assert any("ollama serve" in e for e in rec.telemetry["errors"])
