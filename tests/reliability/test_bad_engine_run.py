"""The engine's CLI and library on bad input: an unreadable system fact, a malformed OLLAMA_HOST, a question that
is not UTF-8, a telemetry path that breaks, stop signals and unexpected errors. Each case asserts the exit
status, ONE message line naming the fix, no traceback, and that nothing is lost (the answer printed, the
telemetry written or written to a fallback the message names). The backend is a scripted test double; only the
cases marked e2e run the embedded model, briefly. SIGTERM in a whole bench session: test_session_faults.py."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm_research_bench.engine import telemetry
from tests.reliability.bad_input import Q, ROOT, Ran, clean, engine_cli, one_line, run_args


@pytest.mark.parametrize("host", ["127.0.0.1:99999", "[::1", "http://alice:pw@[::1"])
def test_malformed_ollama_host_engine_system_reports_the_fact_unreadable(capsys, monkeypatch, host):
    monkeypatch.setenv("OLLAMA_HOST", host)
    r = clean(engine_cli(capsys, "system", "--json"))
    assert r.rc == 0 and r.err == ""
    info = json.loads(r.out)
    assert "is not a valid host[:port]" in info["unreadable"]["ollama"] and "unset it" in info["unreadable"]["ollama"]
    assert info["ollama"]["reachable"] is False and "pw" not in r.out


@pytest.mark.parametrize("host", ["127.0.0.1:99999", "[::1"])
def test_malformed_ollama_host_never_fails_a_llamacpp_run(capsys, monkeypatch, scripted, corpus_file, tmp_path, host):
    monkeypatch.setenv("OLLAMA_HOST", host)
    monkeypatch.setattr(telemetry, "_SYSTEM_CACHE", None)     # read the facts under this environment
    out = tmp_path / "t.json"
    r = clean(engine_cli(capsys, *run_args(corpus_file, "--telemetry-out", out)))
    assert r.rc == 0, r.err
    assert "Answer:" in r.out and f"telemetry: {out}" in r.out
    tel = json.loads(out.read_text())
    assert tel["success"] and telemetry.validation_errors(tel) == []


@pytest.mark.parametrize("host", ["127.0.0.1:99999", "[::1"])
def test_malformed_ollama_host_on_the_ollama_backend_is_one_clear_error(capsys, monkeypatch, corpus_file, host):
    monkeypatch.setenv("OLLAMA_HOST", host)
    one_line(engine_cli(capsys, *run_args(corpus_file, "--backend", "ollama")),
             r"^error: OLLAMA_HOST=.* is not a valid host\[:port\].*set it like 127\.0\.0\.1:11434", 2)


def test_a_system_fact_that_cannot_be_read_is_null_with_its_reason(monkeypatch):
    from llm_research_bench.engine import system

    def broken():
        raise OSError("/proc/cpuinfo: permission denied")
    monkeypatch.setattr(system, "cpu_model", broken)
    monkeypatch.setattr(system.psutil, "virtual_memory", broken)
    info = system.detect(probe_ollama_server=False).as_dict()
    assert info["cpu_model"] is None and info["ram_gb"] is None
    assert info["unreadable"] == {"cpu_model": "OSError: /proc/cpuinfo: permission denied",
                                  "ram_gb": "OSError: /proc/cpuinfo: permission denied"}
    assert system.current_machine_class() == "unknown"        # budgets fall back to the reference class


@pytest.mark.parametrize("question", ["Is \udcff ok?", "\udce9t\udce9?", "caf\ud800"])
def test_a_question_that_is_not_utf8_is_refused_before_the_run(capsys, scripted, corpus_file, tmp_path, question):
    r = engine_cli(capsys, "run", question, "--closed-book", "--corpus", corpus_file, "--telemetry-out",
                   tmp_path / "t.json")
    one_line(r, r"^error: the question is not valid UTF-8 text .*convert its file to UTF-8", 2)
    assert scripted.made == []                       # refused before any work


def test_question_digests_never_crash_on_undecodable_text():
    assert len(telemetry.sha256("Is \udcff ok?")) == 64 and len(telemetry.text_digest("caf\ud800")) == 64


def test_telemetry_out_a_folder_is_refused_before_the_run(capsys, scripted, corpus_file, tmp_path):
    r = engine_cli(capsys, *run_args(corpus_file, "--telemetry-out", tmp_path))
    one_line(r, rf"^error: telemetry output: {re.escape(str(tmp_path))} is a folder: give a file name", 2)
    assert scripted.made == []


def test_telemetry_path_broken_during_the_run_keeps_answer_and_telemetry(capsys, scripted, corpus_file, tmp_path,
                                                                         monkeypatch):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    def break_path():                   # the folder of --telemetry-out becomes a file while the run goes on
        out_dir.rmdir()
        out_dir.write_text("not a folder")
    scripted(break_path)
    r = engine_cli(capsys, *run_args(corpus_file, "--telemetry-out", out_dir / "t.json"))
    line = one_line(r, r"^error: telemetry could not be written to .*t\.json .*: written to .* instead$", 2)
    assert "Answer:" in r.out and "yes, they do" in r.out            # the answer is printed
    fallback = Path(line.rsplit("written to ", 1)[1].removesuffix(" instead"))
    assert fallback.parent == cwd and fallback.name.startswith("research-telemetry-")
    tel = json.loads(fallback.read_text())
    assert tel["success"] and telemetry.validation_errors(tel) == []


def test_sigterm_stores_partial_telemetry_marked_and_exits_143(capsys, scripted, corpus_file, tmp_path):
    scripted(lambda: (os.kill(os.getpid(), signal.SIGTERM), time.sleep(5)))
    out = tmp_path / "t.json"
    before = signal.getsignal(signal.SIGTERM)
    r = engine_cli(capsys, *run_args(corpus_file, "--telemetry-out", out))
    one_line(r, rf"^stopped by SIGTERM; partial telemetry \(success: false\) written to {re.escape(str(out))}$", 143)
    tel = json.loads(out.read_text())
    assert tel["success"] is False and tel["timed_out"] is False
    assert tel["errors"] == ["Terminated: stopped by SIGTERM"] and telemetry.validation_errors(tel) == []
    assert signal.getsignal(signal.SIGTERM) == before                  # the handler is the CLI's only while it runs


def _signal_inside_a_c_callback(sig: int | None, n: int = 2000) -> None:
    """Send `sig` to this process from inside a ctypes callback that C code calls (qsort's comparator), as a signal
    lands inside llama.cpp's Python log callback while a model loads: Python swallows what a handler raises
    there. Then go on in Python for a while."""
    import ctypes
    libc = ctypes.CDLL(None)
    cmp_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
    sent = []

    def cmp(a, b):
        if not sent and sig is not None:
            sent.append(os.kill(os.getpid(), sig))
        sum(range(500))
        return a[0] - b[0]
    arr = (ctypes.c_int * n)(*range(n, 0, -1))
    libc.qsort(arr, n, ctypes.sizeof(ctypes.c_int), cmp_t(cmp))
    time.sleep(5)


def test_a_harness_timeout_firing_inside_a_c_callback_is_not_swallowed():
    from llm_research_bench.engine.deadline import stopping_signals
    from llm_research_bench.harness.run.timeouts import HarnessTimeout, SignalTimer
    timer = SignalTimer()
    with stopping_signals(), pytest.raises(HarnessTimeout):    # without stopping_signals() it is swallowed
        try:
            timer.arm(0.01)                               # fires inside the callbacks of a long C call
            _signal_inside_a_c_callback(None, n=5000)
        finally:
            timer.cancel()


@pytest.mark.parametrize("sig,rc,message", [(signal.SIGTERM, 143, "stopped by SIGTERM"),
                                            (signal.SIGINT, 130, r"interrupted \(Ctrl-C\)")], ids=["sigterm", "sigint"])
def test_a_stop_signal_inside_a_c_callback_is_not_swallowed(capsys, scripted, corpus_file, tmp_path, sig, rc,
                                                            message):
    scripted(lambda: _signal_inside_a_c_callback(sig))
    out = tmp_path / "t.json"
    r = engine_cli(capsys, *run_args(corpus_file, "--telemetry-out", out))
    one_line(r, rf"^{message}; partial telemetry \(success: false\) written to ", rc)     # stopped, not run on
    assert json.loads(out.read_text())["success"] is False


def test_ctrl_c_names_the_partial_telemetry_and_exits_130(capsys, scripted, corpus_file, tmp_path):
    def interrupt():
        raise KeyboardInterrupt
    scripted(interrupt)
    out = tmp_path / "t.json"
    r = engine_cli(capsys, *run_args(corpus_file, "--telemetry-out", out))
    one_line(r, r"^interrupted \(Ctrl-C\); partial telemetry \(success: false\) written to ", 130)
    assert json.loads(out.read_text())["success"] is False


def test_an_unexpected_error_is_one_line_exit_3_and_keeps_the_partial_telemetry(capsys, scripted, corpus_file,
                                                                               tmp_path, monkeypatch):
    def bug():
        raise ZeroDivisionError("division by zero")
    scripted(bug)
    out = tmp_path / "t.json"
    monkeypatch.delenv("RESEARCH_BENCH_DEBUG", raising=False)
    r = engine_cli(capsys, *run_args(corpus_file, "--telemetry-out", out))
    one_line(r, r"^error: unexpected ZeroDivisionError: division by zero; partial telemetry \(success: false\) "
                r"written to .* -- this is a bug: please report it \(RESEARCH_BENCH_DEBUG=1 shows the traceback\)$", 3)
    assert json.loads(out.read_text())["errors"] == ["ZeroDivisionError: division by zero"]


def test_a_backend_failure_mid_run_is_a_user_facing_error_exit_2(capsys, scripted, corpus_file, tmp_path):
    from llm_research_bench.engine.backends import StreamInterrupted

    def cut():
        raise StreamInterrupted("the Ollama stream ended before done: check the server's log")
    scripted(cut)
    r = engine_cli(capsys, *run_args(corpus_file, "--telemetry-out", tmp_path / "t.json"))
    one_line(r, r"^error: the Ollama stream ended before done: check the server's log; partial telemetry ", 2)


def _engine_proc(args: list, tmp_path: Path, **env) -> subprocess.Popen:
    e = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    e.pop(telemetry.HASH_KEY_ENV, None)
    return subprocess.Popen([sys.executable, "-m", "llm_research_bench.engine", *map(str, args)], cwd=tmp_path, env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.e2e
def test_e2e_malformed_ollama_host_llamacpp_run_prints_the_answer_and_writes_telemetry(tmp_path, corpus_file):
    out = tmp_path / "t.json"
    p = _engine_proc(["run", Q, "--closed-book", "--corpus", corpus_file, "--telemetry-out", out], tmp_path,
                     OLLAMA_HOST="127.0.0.1:99999")
    stdout, stderr = p.communicate(timeout=600)
    clean(Ran(p.returncode, stdout, stderr))
    assert p.returncode == 0, stderr
    assert "Answer:" in stdout and f"telemetry: {out}" in stdout
    tel = json.loads(out.read_text())
    assert tel["success"] and telemetry.validation_errors(tel) == [] and tel["metrics"]["tokens_generated"] > 0


@pytest.mark.e2e
def test_e2e_sigterm_mid_run_exits_143_with_partial_telemetry(tmp_path, corpus_file):
    out = tmp_path / "t.json"
    # With retrieval: the model loads first, then the embedder and the index, so SIGTERM sent once the model file
    # is mapped lands in the middle of the run.
    p = _engine_proc(["run", Q, "--corpus", corpus_file, "--telemetry-out", out], tmp_path)
    maps = Path(f"/proc/{p.pid}/maps")
    deadline = time.time() + 300
    while p.poll() is None and time.time() < deadline:
        try:
            if ".gguf" in maps.read_text():
                break
        except OSError:
            pass
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    stdout, stderr = p.communicate(timeout=120)
    r = Ran(p.returncode, stdout, stderr)
    if p.returncode == 0:
        pytest.skip(f"the run finished before SIGTERM arrived: {stderr[-500:]}")
    one_line(r, rf"^stopped by SIGTERM; partial telemetry \(success: false\) written to {re.escape(str(out))}$", 143)
    tel = json.loads(out.read_text())
    assert tel["success"] is False and tel["errors"] == ["Terminated: stopped by SIGTERM"]
    assert telemetry.validation_errors(tel) == []
