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
