"""User-caused errors: one clear line naming the fix, non-zero exit, nothing half-written."""
import subprocess
import sys
from pathlib import Path

import pytest

from llm_research_bench.engine.backends import ModelNotFound, make_backend
from llm_research_bench.engine.backends.registry import resolve_model

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("name, content, match", [
    ("missing.gguf", None, "not found: pass an existing .gguf"),
    ("text.gguf", b"hello\n", "is not a GGUF file"),
    ("garbage.gguf", b"GGUF\x03\x00\x00\x00garbage", "could not load garbage.gguf"),
    ("truncated.gguf", "truncate", "could not load truncated.gguf"),
])
def test_missing_or_corrupt_gguf(tmp_path, name, content, match):
    f = tmp_path / name
    if content == "truncate":
        f.write_bytes(resolve_model("smollm2-135m")[0].read_bytes()[:4096])
    elif content is not None:
        f.write_bytes(content)
    with pytest.raises(ModelNotFound, match=match):
        make_backend("llamacpp", str(f), context_window=1024)


def test_unknown_registry_model():
    with pytest.raises(ModelNotFound, match="unknown model 'llama-9000'.*smollm2-135m"):
        resolve_model("llama-9000")


@pytest.mark.parametrize("args, match", [
    (["run", "   ", "--profile", "quick"], "question is empty"),
    (["run", "Is it?", "--profile", "fastest"], "unknown profile 'fastest'"),
    (["run", "Is it?", "--corpus", "/nonexistent/corpus"], "not found; pass --corpus"),
    (["run", "Is it?", "--model", "/nonexistent/m.gguf"], "not found: pass an existing .gguf"),
])
def test_cli_refuses_clearly(args, match, tmp_path):
    r = run_cli(*args, "--telemetry-out", str(tmp_path / "t.json"))
    assert r.returncode == 2, r.stderr
    lines = [x for x in r.stderr.strip().splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and match in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_cli_bad_backend_name():
    r = run_cli("run", "Is it?", "--backend", "vllm")
    assert r.returncode == 2 and "invalid choice: 'vllm'" in r.stderr


def test_cli_profiles_and_validate(tmp_path):
    r = run_cli("profiles")
    assert r.returncode == 0 and "quick" in r.stdout and "thorough" in r.stdout
    bad = tmp_path / "t.json"
    bad.write_text('{"schema_version": "1.0"}')
    r = run_cli("validate", str(bad))
    assert r.returncode == 1 and "$: required" in r.stderr
    r = run_cli("validate", str(ROOT / "tests" / "data" / "telemetry_quick.json"))
    assert r.returncode == 0 and "valid" in r.stdout


def test_cli_bad_profiles_file(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("[profiles.quick]\ncontext_window = -5\n")
    r = run_cli("--profiles-file", str(f), "profiles")
    assert r.returncode == 2
    assert f"file {f}, profile 'quick', key 'context_window'" in r.stderr


def test_cli_profiles_file_after_the_command_and_version(tmp_path, capsys):
    """`research-engine run Q --profiles-file F` as docs/engine.md writes it: the option after the command works."""
    from llm_research_bench.engine.cli import main
    f = tmp_path / "p.toml"
    f.write_text('[profiles.tiny]\ndescription = "t"\ncontext_window = 1024\nbatch_size = 2\nmin_batch_size = 1\n'
                 'max_batch_size = 4\nef_search = 16\nretrieve_k = 8\nmax_tokens = 256\nclaim_tokens = 64\n'
                 'synthesis_tokens = 64\ntimeout_s = 10\nnovelty_threshold = 0.1\ncitation_floor = 0.5\n'
                 'models = { llamacpp = "smollm2-135m" }\n'
                 '[profiles.tiny.budgets.apple-m1-16gb]\ntime_s = [1, 10]\nmemory_mb = 2048\n')
    for argv in (["profiles", "--profiles-file", str(f)], ["--profiles-file", str(f), "profiles"]):
        assert main(argv) == 0
        assert "tiny" in capsys.readouterr().out
    assert main(["profiles", "--profiles-file", str(tmp_path / "gone.toml")]) == 2
    assert "gone.toml" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and "research-engine" in capsys.readouterr().out


def test_memory_sampler_trace_document():
    import time

    from llm_research_bench.engine.memory import MemorySampler
    s = MemorySampler(hz=200, trace=True).start()
    blob = bytearray(32 * 2**20)
    for i in range(0, len(blob), 4096):
        blob[i] = 1
    time.sleep(0.15)
    s.stop()
    doc = s.trace_document()
    assert doc["samples"] == len(doc["trace"]) >= 5 and doc["unit"] == "MB"
    ts = [t for t, _ in doc["trace"]]
    assert ts == sorted(ts) and max(mb for _, mb in doc["trace"]) == doc["peak_mb"]
    assert MemorySampler().trace is None                    # off unless asked for


def test_environment_variables_share_one_prefix_and_old_names_warn(monkeypatch):
    from llm_research_bench.engine import envvars
    assert all(envvars.name(k).startswith("RESEARCH_BENCH_") for k in envvars.VARIABLES)
    monkeypatch.delenv("RESEARCH_BENCH_CACHE_DIR", raising=False)
    monkeypatch.setenv("RESEARCH_CACHE_DIR", "/old")
    envvars._warned.discard("RESEARCH_CACHE_DIR")
    with pytest.warns(DeprecationWarning, match="RESEARCH_BENCH_CACHE_DIR"):
        assert envvars.env("CACHE_DIR") == "/old"
    monkeypatch.setenv("RESEARCH_BENCH_CACHE_DIR", "/new")
    assert envvars.env("CACHE_DIR") == "/new"
    from llm_research_bench.engine.index import cache_root
    assert str(cache_root()) == "/new"


def test_cli_run_help_names_quiet_and_verbose(capsys):
    from llm_research_bench.engine.cli import main
    with pytest.raises(SystemExit) as e:
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "--verbose" in out and "llama.cpp's own log" in out and "--quiet" in out
