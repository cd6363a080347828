"""The embedded model's CPU copy in the cache: written once, reused, written again when damaged; an unwritable
cache loads the shipped file with one warning; RESEARCH_BENCH_WEIGHTS=shipped skips the copy."""
from __future__ import annotations

import logging

import pytest

from llm_research_bench.engine.backends import weights
from llm_research_bench.engine.backends.base import BackendError
from llm_research_bench.engine.backends.llamacpp import LlamaCppBackend
from llm_research_bench.engine.backends.registry import resolve_model


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RESEARCH_BENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def copies(cache) -> list:
    return sorted((cache / "models").glob("*.gguf"))


def greedy(b: LlamaCppBackend) -> str:
    from llm_research_bench.engine.backends import Message
    return "".join(b.stream([Message("user", "Name a colour.")], max_tokens=8))


def test_the_cpu_copy_is_written_once_then_reused(cache):
    first = LlamaCppBackend("smollm2-135m", context_window=512)
    assert first.describe()["weights"] == "q8_0" and first.model_path == copies(cache)[0]
    stamp = first.model_path.stat().st_mtime_ns
    first.close()
    again = LlamaCppBackend("smollm2-135m", context_window=512)
    assert again.model_path.stat().st_mtime_ns == stamp and len(copies(cache)) == 1
    again.close()


def test_a_damaged_copy_is_written_again_and_loads(cache, caplog):
    LlamaCppBackend("smollm2-135m", context_window=512).close()
    path = copies(cache)[0]
    path.write_bytes(path.read_bytes()[:4096])               # GGUF magic, truncated body
    with caplog.at_level(logging.WARNING):
        b = LlamaCppBackend("smollm2-135m", context_window=512)
    assert b.model_path == path and path.stat().st_size > 100 * 2**20
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"the cached copy {path} could not be loaded: writing it again"]
    assert greedy(b)
    b.close()


def test_an_unwritable_cache_loads_the_shipped_file_with_one_warning(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("RESEARCH_BENCH_CACHE_DIR", str(blocker))
    weights._warned.clear()
    with caplog.at_level(logging.WARNING):
        b = LlamaCppBackend("smollm2-135m", context_window=512)
        LlamaCppBackend("smollm2-135m", context_window=512).close()
    shipped, _ = resolve_model("smollm2-135m")
    assert b.model_path == shipped
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "cannot be written" in lines[0] and "RESEARCH_BENCH_CACHE_DIR" in lines[0]
    b.close()


def test_weights_shipped_loads_the_file_as_shipped(cache, monkeypatch):
    monkeypatch.setenv("RESEARCH_BENCH_WEIGHTS", "shipped")
    b = LlamaCppBackend("smollm2-135m", context_window=512)
    assert b.describe()["weights"] == "shipped" and b.model_path == resolve_model("smollm2-135m")[0]
    assert copies(cache) == []
    b.close()


def test_the_copy_is_for_the_cpu_only_and_a_bad_setting_names_the_fix(monkeypatch):
    assert weights.wanted("q8_0", "cpu") == "q8_0"
    assert weights.wanted("q8_0", "metal") is None
    assert weights.wanted(None, "cpu") is None
    monkeypatch.setenv("RESEARCH_BENCH_WEIGHTS", "q4_0")
    with pytest.raises(BackendError, match="RESEARCH_BENCH_WEIGHTS='q4_0': the only value is 'shipped'"):
        weights.wanted("q8_0", "cpu")


def test_the_warm_up_writes_the_copy_and_leaves_no_memory_behind(cache):
    import psutil

    from llm_research_bench.engine.backends.llamacpp import prepare_cpu_weights
    before = psutil.Process().memory_info().rss
    prepare_cpu_weights()
    assert len(copies(cache)) == 1
    # The quantizer frees what it held: the bench process's later runs do not carry it.
    assert psutil.Process().memory_info().rss - before < 64 * 2**20
