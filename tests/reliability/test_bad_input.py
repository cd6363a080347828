"""The bad-input suite: every case of issue 10 as a test, and arbitrary input (hypothesis) where it fits.

Each case asserts the exit status, a message of ONE line naming the fix (one line per kind for what a store read
skips), no traceback, no hang, and that nothing is lost (the answer printed, the telemetry written or written to
a fallback the message names, the readable records still read). It is the regression net of this area and runs
in `make test`: the engine is replaced by test doubles (a scripted backend, the harness's replay double, a child
double), named as such; only the cases marked e2e run the embedded model, briefly. SIGTERM in a whole bench
session is tested beside Ctrl-C in test_session_faults.py.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_research_bench.engine import pipeline, telemetry
from llm_research_bench.engine.backends import Backend, GenerationStats
from llm_research_bench.engine.corpus import CorpusError, load_corpus
from llm_research_bench.engine.profiles import MAX_CONTEXT, ProfileError, load_profiles
from llm_research_bench.harness.records import ResultRecord
from llm_research_bench.harness.run import isolated, store
from llm_research_bench.harness.run.verdicts import BudgetSpec, evaluate
from tests.harness.conftest import Bench, pinned_profiles

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "telemetry_quick.json"
Q = "Do mitochondria matter?"
COMMIT_A, COMMIT_B = "a" * 40, "b" * 40


# -- helpers ------------------------------------------------------------------------------------------------------
@dataclass
class Ran:
    rc: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        """The non-empty lines on stderr (the messages)."""
        return [line for line in self.err.splitlines() if line.strip()]


def clean(r: Ran) -> Ran:
    """No traceback and no pytest INTERNALERROR anywhere in the output."""
    text = r.out + r.err
    assert "Traceback" not in text and "INTERNALERROR" not in text, text[-3000:]
    return r


def one_line(r: Ran, pattern: str, rc: int) -> str:
    """Exit status `rc` and exactly one message line, matching `pattern`."""
    clean(r)
    assert r.rc == rc, (r.rc, r.out[-1000:], r.err[-2000:])
    assert len(r.lines) == 1, r.lines
    assert re.search(pattern, r.lines[0]), r.lines[0]
    return r.lines[0]


def engine_cli(capsys, *argv: str) -> Ran:
    from llm_research_bench.engine.cli import main
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return Ran(rc, cap.out, cap.err)


def bench_cli(capsys, *argv: str) -> Ran:
    from llm_research_bench.harness.commands.cli import main
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return Ran(rc, cap.out, cap.err)


class ScriptedBackendDouble(Backend):
    """Test double of a model backend: streams a fixed answer; `during` runs between its two chunks (to send a
    signal, or to break the telemetry path mid-run)."""
    name, model_name = "llamacpp", "scripted-double"

    def __init__(self, during=None):
        super().__init__()
        self.during = during
        self.calls = 0

    def count_tokens(self, text):
        return len(text) // 4

    def render(self, messages, prefill=""):
        return "".join(m.content for m in messages) + prefill

    def stream(self, messages, *, max_tokens, prefill="", stop=None):
        self.calls += 1
        yield " yes, they do"
        if self.during is not None:
            self.during()
        yield " [1]."
        n = self.prompt_tokens(messages, prefill)
        self.last_stats = GenerationStats(n, n, 5, 0.01, 0.02, 4, finish_reason="stop")


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


def run_args(corpus_file, *extra) -> list:
    return ["run", Q, "--closed-book", "--quiet", "--corpus", corpus_file, *extra]


# -- the engine CLI and library -------------------------------------------------------------------------------------
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


BAD_PROFILE_VALUES = [
    ("timeout_s = inf", "timeout_s", "must be a finite number, got inf"),
    ("timeout_s = nan", "timeout_s", "must be a finite number"),
    ("timeout_s = 1e300", "timeout_s", r"must be > 0 and <= 86400"),
    ("timeout_s = 0", "timeout_s", r"must be > 0"),
    ("novelty_threshold = nan", "novelty_threshold", "must be a finite number, got nan"),
    ("novelty_threshold = 1.5", "novelty_threshold", r"must be >= 0 and <= 1"),
    ("citation_floor = -inf", "citation_floor", "must be a finite number"),
    ("context_window = 9999999999999", "context_window", r"must be between 512 and 1,048,576"),
    ("batch_size = 0", "batch_size", r"must be between 1 and"),
    ("ef_search = 99999999999999999999", "ef_search", r"must be between 1 and"),
    ("budgets.linux-x86_64-2c.time_s = [0, inf]", r"budgets\.linux-x86_64-2c\.time_s", "must be a finite number"),
    ("budgets.linux-x86_64-2c.memory_mb = nan", r"budgets\.linux-x86_64-2c\.memory_mb", "must be a finite number"),
    ("budgets.linux-x86_64-2c.memory_mb = 1e30", r"budgets\.linux-x86_64-2c\.memory_mb", r"must be > 0 and <="),
]


@pytest.mark.parametrize("line,key,msg", BAD_PROFILE_VALUES, ids=[v[0] for v in BAD_PROFILE_VALUES])
def test_profile_numbers_must_be_finite_and_in_range_engine_cli(capsys, tmp_path, line, key, msg):
    f = tmp_path / "p.toml"
    f.write_text(f"[profiles.quick]\n{line}\n")
    one_line(engine_cli(capsys, "--profiles-file", f, "profiles"), rf"^error: file .*p\.toml, profile 'quick', "
                                                                   rf"key '{key}': {msg}", 2)


def test_context_above_the_models_trained_context_is_refused_before_loading(capsys, corpus_file, tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("[profiles.quick]\ncontext_window = 16384\n")       # SmolLM2-135M was trained on 8,192
    r = engine_cli(capsys, "--profiles-file", f, *run_args(corpus_file, "--telemetry-out", tmp_path / "t.json"))
    one_line(r, r"^error: the profile's context_window 16,384 is larger than the 8,192-token context "
                r"smollm2-135m was trained on: set context_window <= 8,192", 2)
    assert json.loads((tmp_path / "t.json").read_text())["success"] is False


def test_the_trained_context_is_read_from_the_gguf_header_and_garbage_gives_none(tmp_path):
    from llm_research_bench.engine.backends.llamacpp import gguf_context_length
    from llm_research_bench.engine.backends.registry import resolve_model
    assert gguf_context_length(resolve_model("smollm2-135m")[0]) == 8192
    assert gguf_context_length(resolve_model("gemma3-270m")[0]) == 32768
    for i, junk in enumerate([b"", b"GGUF", b"GGUF\x03\x00\x00\x00" + b"\xff" * 64, os.urandom(4096)]):
        (tmp_path / f"{i}.gguf").write_bytes(junk)
        assert gguf_context_length(tmp_path / f"{i}.gguf") is None


@pytest.mark.parametrize("kind", ["folder", "fifo", "binary", "missing"])
def test_profiles_file_that_is_not_a_toml_file_engine_cli(capsys, tmp_path, kind):
    f = tmp_path / "p.toml"
    if kind == "folder":
        f.mkdir()
    elif kind == "fifo":
        os.mkfifo(f)
    elif kind == "binary":
        f.write_bytes(b"\xff\xfe\x00garbage")
    r = engine_cli(capsys, "--profiles-file", f, "profiles")
    one_line(r, rf"^error: file {re.escape(str(f))}: (cannot be read|not UTF-8 text|file not found)", 2)


@pytest.mark.parametrize("content,msg", [
    (b"\x89PNG\r\n\x1a\n\x00\x00binary", r"not UTF-8 JSON text \(invalid start byte at byte 0\)"),
    (b"{not json", r"not JSON \(line 1, column 2: .*\)"),
    (None, r"cannot be read \(is a folder, not a regular file\)"),
    ("fifo", r"cannot be read \(is a FIFO, not a regular file\)"),
], ids=["binary", "not-json", "folder", "fifo"])
@pytest.mark.timeout(30)
def test_engine_validate_on_what_is_not_telemetry(capsys, tmp_path, content, msg):
    f = tmp_path / "t.json"
    if content is None:
        f.mkdir()
    elif content == "fifo":
        os.mkfifo(f)
    else:
        f.write_bytes(content)
    one_line(engine_cli(capsys, "validate", f), rf"^error: .*t\.json: {msg}: give a telemetry JSON file", 2)


@pytest.mark.parametrize("name,content,msg", [
    ("other.json", {"a": [1, 2]}, r"JSON, but not PubMedQA's ori_pqal\.json format .* use a \.jsonl file"),
    ("list.json", [{"id": "p1", "text": "x"}], r"JSON, but not PubMedQA's ori_pqal\.json format"),
    ("bad.json", "{oops", r"not valid JSON \(line 1: .*\); expected PubMedQA's ori_pqal\.json, or for your own"),
    ("fifo.jsonl", "fifo", r"cannot be read \(is a FIFO, not a regular file\): pass a corpus file or folder"),
], ids=["object", "list", "not-json", "fifo"])
@pytest.mark.timeout(30)
def test_a_corpus_that_is_not_pubmedqa_gets_its_own_message(capsys, tmp_path, name, content, msg):
    f = tmp_path / name
    if content == "fifo":
        os.mkfifo(f)
    else:
        f.write_text(content if isinstance(content, str) else json.dumps(content))
    one_line(engine_cli(capsys, "run", Q, "--corpus", f), rf"^error: {re.escape(str(f))}: {msg}", 2)


# -- the keyed question hash -------------------------------------------------------------------------------------------
def _research_digest(monkeypatch, key: str | None) -> dict:
    from llm_research_bench.engine.corpus import Corpus, Passage
    if key is None:
        monkeypatch.delenv(telemetry.HASH_KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(telemetry.HASH_KEY_ENV, key)
    corpus = Corpus([Passage("p1", "Mitochondria change shape.")], [], "memory", "jsonl")
    sample = json.loads(DATA.read_text())
    tel = pipeline.research(Q, backend=ScriptedBackendDouble(), corpus=corpus, retrieval=False,
                            system_info=sample["system"]).telemetry
    assert telemetry.validation_errors(tel) == []
    return tel["question"]


def test_question_hash_is_sha256_without_a_key(monkeypatch):
    q = _research_digest(monkeypatch, None)
    assert q["hash"] == "sha256" and q["sha256"] == hashlib.sha256(Q.encode()).hexdigest() and "hash_key_id" not in q


def test_question_hash_is_hmac_with_a_key_and_comparable_where_the_key_is_shared(monkeypatch):
    a, b = _research_digest(monkeypatch, "team-secret"), _research_digest(monkeypatch, "team-secret")
    other = _research_digest(monkeypatch, "another-secret")
    assert a["hash"] == "hmac-sha256" and a["sha256"] == hmac.new(b"team-secret", Q.encode(), "sha256").hexdigest()
    assert a["sha256"] == b["sha256"] and a["hash_key_id"] == b["hash_key_id"]    # two machines, one key: comparable
    assert other["sha256"] != a["sha256"] and other["hash_key_id"] != a["hash_key_id"]
    assert a["sha256"] != hashlib.sha256(Q.encode()).hexdigest()                  # a guess cannot be confirmed
    assert "team-secret" not in json.dumps(a)


# -- file modes ----------------------------------------------------------------------------------------------------
def test_records_and_telemetry_files_are_readable_by_the_team(tmp_path):
    old = os.umask(0o022)
    try:
        rec = store.append(tmp_path / "results", _record(COMMIT_A))
        tel = telemetry.write(tmp_path / "t.json", {"run_id": "x"}).path
    finally:
        os.umask(old)
    assert stat.S_IMODE(rec.stat().st_mode) == 0o644 and stat.S_IMODE(tel.stat().st_mode) == 0o644


# -- the results store and the research-bench commands ------------------------------------------------------------------
def _record(commit: str, **kw) -> ResultRecord:
    base = dict(test_id="benches/test_pipeline.py::test_pipeline[quick]", bench="pipeline", profile="quick",
                outcome="passed", target_met=True, machine_fingerprint="fp1", machine_class="linux-x86_64-2c",
                commit=commit, telemetry=json.loads(DATA.read_text()))
    base.update(kw)
    return ResultRecord(**base)


@pytest.fixture
def results(tmp_path) -> Path:
    """A store with two good records for each of two commits on one machine."""
    root = tmp_path / "results"
    for c in (COMMIT_A, COMMIT_B):
        for _ in range(2):
            store.append(root, _record(c))
    return root


def _edit(path: Path, fn) -> None:
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))


def _newest(results: Path) -> Path:
    return sorted(results.glob(f"fp1/{COMMIT_B[:12]}/*.json"))[-1]


DEFECTS = {
    # name: (how the store is damaged, kind's line pattern, records still readable)
    "record_version_99": (lambda r: _edit(_newest(r), lambda d: d.update(record_version=99)),
                          r"skipped 1 record written by a newer plugin, .* \(record_version 99; this plugin reads up "
                          r"to 1\): upgrade llm-research-bench", 3),
    "metric_fast": (lambda r: _edit(_newest(r), lambda d: d["telemetry"]["metrics"].update(execution_time_s="fast")),
                    r"skipped 1 record with a field or metric of the wrong type, .* \(telemetry\.metrics\."
                    r"execution_time_s is \"fast\", not number\): fix or remove", 3),
    "extra_a_list": (lambda r: _edit(_newest(r), lambda d: d.update(extra=[1, 2])),
                     r"skipped 1 record with a field or metric of the wrong type, .*field 'extra' is \[1, 2\]", 3),
    "older_schema": (lambda r: _edit(_newest(r), lambda d: d["telemetry"].update(schema_version="0.9")),
                     r"skipped 1 record of an older schema, .*telemetry schema_version '0\.9'; this plugin reads "
                     r"'1\.1'\): re-run", 3),
    "truncated": (lambda r: _newest(r).write_bytes(_newest(r).read_bytes()[:200]),
                  r"skipped 1 damaged file that is not a record, .*not JSON", 3),
    "binary": (lambda r: (r / "fp1" / COMMIT_B[:12] / "zz.json").write_bytes(b"\xff\x00" * 64),
               r"skipped 1 damaged file that is not a record, .*zz\.json \(not UTF-8", 4),
    "fifo": (lambda r: os.mkfifo(r / "fp1" / COMMIT_B[:12] / "zz-fifo.json"),
             r"skipped 1 non-regular file named \*\.json, .*zz-fifo\.json \(a FIFO, not a regular file\): remove", 4),
    "folder": (lambda r: (r / "fp1" / COMMIT_B[:12] / "zz-dir.json").mkdir(),
               r"skipped 1 non-regular file named \*\.json, .*zz-dir\.json \(a folder", 4),
    "200MB_garbage": (lambda r: _sparse(r / "fp1" / COMMIT_B[:12] / "zz-big.json", 200 << 20),
                      r"skipped 1 file over the 16 MiB record size limit, .*zz-big\.json \(200 MiB, over", 4),
}


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        fh.write(b"\x8f garbage")
        fh.truncate(size)


COMMANDS = {
    "compare": lambda out: ["compare", "aaaa", "bbbb"],
    "report": lambda out: ["report", "--out", out / "r.html"],
    "export": lambda out: ["export", "--format", "bencher", "--out", out / "e.json"],
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("defect", list(DEFECTS))
def test_every_command_says_what_it_skipped_in_one_line_and_reads_the_rest(capsys, results, tmp_path, defect,
                                                                           command):
    damage, pattern, readable = DEFECTS[defect]
    damage(results)
    r = clean(bench_cli(capsys, *COMMANDS[command](tmp_path), "--results-dir", results))
    assert r.rc == 0, r.err
    assert len(r.lines) == 1 and r.lines[0].startswith(f"{command}: skipped 1 "), r.lines
    assert re.search(pattern, r.lines[0]), r.lines[0]
    assert len(store.read_store(results).records) == readable             # the rest is read
    if command == "report":
        assert f"from {readable} records" in r.out
    elif command == "compare":
        assert "execution_time_s" in r.out or "time" in r.out


def test_one_line_per_kind_whatever_the_number_of_files(capsys, results, tmp_path):
    d = results / "fp1" / COMMIT_B[:12]
    for i in range(5):
        (d / f"zz-{i}.json").write_text("{")
        os.mkfifo(d / f"zz-fifo-{i}.json")
    r = clean(bench_cli(capsys, "compare", "aaaa", "bbbb", "--results-dir", results))
    assert r.rc == 0
    assert len(r.lines) == 2, r.lines
    assert r.lines[0].startswith("compare: skipped 5 damaged files that are not records, e.g. ")
    assert r.lines[1].startswith("compare: skipped 5 non-regular files named *.json, e.g. ")


def test_skipping_a_200MB_file_costs_no_memory(results):
    _sparse(results / "fp1" / COMMIT_B[:12] / "zz-big.json", 200 << 20)
    code = textwrap.dedent(f"""
        import resource
        from llm_research_bench.harness.run.store import read_store
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        read = read_store({str(results)!r})
        assert len(read.records) == 4 and read.skipped.counts["too_large"] == 1
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip()) < 20, f"reading the store grew the process by {r.stdout.strip()} MB"


@pytest.mark.parametrize("command", ["report", "export"])
def test_out_a_folder_is_one_line_and_leaves_nothing_behind(capsys, results, tmp_path, command):
    out = tmp_path / "outdir"
    out.mkdir()
    argv = ["report", "--out", out] if command == "report" else ["export", "--format", "bencher", "--out", out]
    one_line(bench_cli(capsys, *argv, "--results-dir", results),
             rf"^{command}: --out {re.escape(str(out))} is a folder: give a file name, e.g. ", 2)
    assert list(out.iterdir()) == []                            # no .tmp file left behind
    assert len(store.read_store(results).records) == 4


@pytest.mark.parametrize("command", list(COMMANDS))
def test_results_dir_that_is_a_file(capsys, tmp_path, command):
    f = tmp_path / "results"
    f.write_text("x")
    one_line(bench_cli(capsys, *COMMANDS[command](tmp_path), "--results-dir", f),
             rf"^{command}: results folder .* is not a folder: pass the folder that holds the records", 2)


# -- the plugin --------------------------------------------------------------------------------------------------------
@pytest.fixture
def bench(pytester, monkeypatch) -> Bench:
    for k in ("RESEARCH_PROFILES", "RESEARCH_BENCH_PROFILES", "GITHUB_STEP_SUMMARY", "RESEARCH_BENCH_RESULTS_DIR", "RESEARCH_BENCH_MACHINE_ID"):
        monkeypatch.delenv(k, raising=False)
    for k in list(os.environ):
        if k.startswith("RB_DOUBLE_"):
            monkeypatch.delenv(k)
    pinned = pytester.path / "pinned-budgets.toml"
    pinned.write_text(pinned_profiles())
    monkeypatch.setenv("RESEARCH_BENCH_PROFILES", str(pinned))
    return Bench(pytester)


def _pytest_ran(result) -> Ran:
    return Ran(result.ret, result.stdout.str(), result.stderr.str())


@pytest.mark.parametrize("line,key", [(v[0], v[1]) for v in BAD_PROFILE_VALUES[:9]],
                         ids=[v[0] for v in BAD_PROFILE_VALUES[:9]])
def test_profile_numbers_in_a_bench_session_are_a_usage_error_not_an_overflow(bench, line, key):
    f = bench.profiles_file(f"[profiles.quick]\n{line}\n")
    bench.run_bench()
    r = clean(_pytest_ran(bench.run("-m", "quick", "--research-profiles-file", str(f))))
    assert r.rc == 4, r.out[-2000:]
    errs = [x for x in r.err.splitlines() if x.startswith("ERROR:")]
    assert len(errs) == 1 and re.search(rf"--research-profiles-file .*key '{key}'", errs[0]), r.err
    assert "OverflowError" not in r.out + r.err


@pytest.mark.parametrize("kind", ["folder", "fifo", "binary"])
@pytest.mark.timeout(60)
def test_profiles_file_that_is_not_toml_in_a_bench_session(bench, kind):
    f = bench.pytester.path / "p.toml"
    {"folder": f.mkdir, "fifo": lambda: os.mkfifo(f), "binary": lambda: f.write_bytes(b"\xff\x00")}[kind]()
    bench.run_bench()
    r = clean(_pytest_ran(bench.run("-m", "quick", "--research-profiles-file", str(f))))
    assert r.rc == 4
    errs = [x for x in r.err.splitlines() if x.startswith("ERROR:")]
    assert len(errs) == 1 and errs[0].startswith("ERROR: --research-profiles-file (ini research_profiles_file): file ")


def test_summary_md_a_folder_is_a_usage_error(bench):
    bench.run_bench()
    r = clean(_pytest_ran(bench.run("-m", "quick", "--research-summary-md", str(bench.pytester.path))))
    assert r.rc == 4 and "--research-summary-md (ini research_summary_md): " in r.err and "is a folder" in r.err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("corpus", ["other.json", "fifo.jsonl"])
def test_a_bad_corpus_in_a_bench_session_is_one_line_not_a_traceback(bench, corpus):
    f = bench.pytester.path / corpus
    os.mkfifo(f) if corpus.startswith("fifo") else f.write_text(json.dumps({"a": [1]}))
    bench.pytester.makeconftest("")                  # the real warm-up: it loads the corpus first, and fails there
    bench.run_bench()
    r = clean(_pytest_ran(bench.run("-m", "quick", "--research-corpus", str(f))))
    assert r.rc == 1
    fails = [x for x in r.out.splitlines() if x.startswith("bench warm-up: ")]
    assert len(fails) == 1 and str(f) in fails[0], r.out[-3000:]
    assert "During handling" not in r.out
    assert ("not PubMedQA's" if corpus == "other.json" else "is a FIFO") in fails[0]


def test_the_session_summary_says_what_the_store_skipped(bench):
    bench.record_bench()
    assert bench.run("-m", "quick").ret == 0
    d = next(bench.results.rglob("*.json")).parent
    (d / "zz.json").write_text("{")
    os.mkfifo(d / "zz-fifo.json")
    md = bench.pytester.path / "summary.md"
    r = clean(_pytest_ran(bench.run("-m", "quick", "--research-compare", "--research-summary-md", str(md))))
    assert r.rc == 0
    lines = [x for x in r.out.splitlines() if x.startswith("results store: skipped")]
    assert len(lines) == 2, r.out[-3000:]
    assert "damaged file that is not a record" in lines[0] and "non-regular file named *.json" in lines[1]
    assert "StoreWarning" not in r.out
    assert "### Results store" in md.read_text() and md.read_text().count("- skipped 1 ") == 2


# -- isolated runs: memory counted for the run --------------------------------------------------------------------------
@pytest.mark.parametrize("startup_mb,run_mb,killed", [(300, 0, False), (0, 300, True)],
                         ids=["big-start-up-small-run", "small-start-up-big-run"])
def test_enforce_memory_counts_the_run_not_the_childs_start_up(monkeypatch, tmp_path, startup_mb, run_mb, killed):
    monkeypatch.setattr(isolated, "CHILD_MODULE", "tests.reliability.child_double")
    monkeypatch.setenv("RB_CHILD_STARTUP_MB", str(startup_mb))
    monkeypatch.setenv("RB_CHILD_RUN_MB", str(run_mb))
    sup = isolated.supervise({"kind": "research"}, timeout_s=30, workdir=tmp_path, enforce_memory_mb=200,
                             startup_timeout_s=30)
    check = sup.extra["memory_check"]
    assert check["run_started"] is True and "start-up and warm-up not counted" in check["counted"]
    if killed:
        assert sup.killed_by and "during the run exceeded the 200 MB limit" in sup.killed_by
        assert "--research-enforce-memory counts the run's process-tree RSS from the run's start" in sup.killed_by
    else:
        assert sup.killed_by is None and sup.result["status"] == "completed", sup.cause
        assert check["startup_peak_mb"] >= 250 and sup.peak_mb < 200


def test_an_interrupted_run_is_never_called_under_budget():
    tel = json.loads(DATA.read_text())
    tel["success"], tel["metrics"]["execution_time_s"] = False, 0.8
    budget = BudgetSpec(profile="quick", machine_class="linux-x86_64-2c", time_lower_s=10, time_upper_s=45,
                        memory_mb=4096, timeout_s=45)
    v = evaluate(tel, budget, schema_errors=[], run_error="KeyboardInterrupt")
    assert v.time_status == "incomplete" and not any("under budget" in n for n in v.notes)
    tel["success"] = True
    assert evaluate(tel, budget, schema_errors=[]).time_status == "under"


# -- arbitrary input ---------------------------------------------------------------------------------------------------
GOOD = json.loads(DATA.read_text())
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40, deadline=None)
@given(blobs=st.lists(st.one_of(st.binary(max_size=300),
                                st.dictionaries(st.sampled_from(list(_record(COMMIT_A).as_dict())), json_scalars,
                                                max_size=6).map(lambda d: json.dumps(d).encode())),
                      min_size=1, max_size=4))
def test_any_bytes_in_the_store_are_read_or_skipped_in_one_line_per_kind(tmp_path_factory, blobs):
    root = tmp_path_factory.mktemp("results")
    store.append(root, _record(COMMIT_A))
    d = root / "fp1" / COMMIT_A[:12]
    for i, b in enumerate(blobs):
        (d / f"zz-{i}.json").write_bytes(b)
    read = store.read_store(root)
    assert len(read.records) + read.skipped.total == 1 + len(blobs)
    lines = read.skipped.lines()
    assert len(lines) == len(read.skipped.counts) and all("\n" not in x for x in lines)


profile_numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**70, 2**70))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60, deadline=None)
@given(key=st.sampled_from(["context_window", "batch_size", "max_batch_size", "ef_search", "retrieve_k", "timeout_s",
                            "novelty_threshold", "citation_floor"]), value=profile_numbers)
def test_any_number_in_a_profile_is_refused_or_finite_and_in_range(tmp_path_factory, key, value):
    f = tmp_path_factory.mktemp("p") / "p.toml"
    toml = repr(value) if isinstance(value, int) else {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(
        repr(value), repr(value))
    f.write_text(f"[profiles.quick]\n{key} = {toml}\n")
    try:
        prof = load_profiles(f)["quick"]
    except ProfileError as e:
        assert "\n" not in str(e) and f"key '{key}'" in str(e)
        return
    v = getattr(prof, key)
    assert v == v and abs(v) != float("inf")
    assert prof.timeout_s <= 86400 and 0 <= prof.novelty_threshold <= 1 and prof.context_window <= MAX_CONTEXT


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40, deadline=None)
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".json", ".jsonl"]))
def test_any_bytes_as_a_corpus_load_or_raise_one_corpus_error(tmp_path_factory, data, suffix):
    f = tmp_path_factory.mktemp("c") / f"corpus{suffix}"
    f.write_bytes(data)
    try:
        load_corpus(f)
    except CorpusError as e:
        assert "\n" not in str(e) and str(f) in str(e)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30, deadline=None)
@given(data=st.one_of(st.binary(max_size=300), st.just(json.dumps(GOOD).encode())))
def test_engine_validate_on_any_bytes(tmp_path_factory, data):
    from contextlib import redirect_stderr, redirect_stdout
    from io import StringIO
    from llm_research_bench.engine.cli import main
    f = tmp_path_factory.mktemp("v") / "t.json"
    f.write_bytes(data)
    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["validate", str(f)])
    assert rc in (0, 1, 2) and "Traceback" not in err.getvalue()
    if rc == 2:
        assert len(err.getvalue().strip().splitlines()) == 1


# -- the embedded model, briefly (e2e) ---------------------------------------------------------------------------------
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
