"""research() with a scripted backend (no model): how a run that fails is recorded. A timeout is recognised by its
type (engine.deadline.RunTimeout or a subclass), never by its class name or message."""
import dataclasses
import json
import time
from pathlib import Path

import pytest

from llm_research_bench import engine
from llm_research_bench.engine.backends import Backend, BackendError, GenerationStats
from llm_research_bench.engine.corpus import Corpus, Passage
from llm_research_bench.engine.deadline import RunTimeout
from llm_research_bench.engine.profiles import get_profile
from llm_research_bench.engine.telemetry import validation_errors

SAMPLE = json.loads((Path(__file__).parents[1] / "data" / "telemetry_quick.json").read_text())
CORPUS = Corpus([Passage("p1", "Mitochondria change shape before the cell dies.")], [], "memory", "jsonl")


class ScriptedBackend(Backend):
    """Test double: streams a fixed answer, or raises `fail` after the first delta."""
    name, model_name = "llamacpp", "scripted"

    def __init__(self, fail: BaseException | None = None):
        super().__init__()
        self.fail = fail

    def count_tokens(self, text):
        return len(text) // 4

    def render(self, messages, prefill=""):
        return "".join(m.content for m in messages) + prefill

    def stream(self, messages, *, max_tokens, prefill="", stop=None):
        yield " yes, they do."
        if self.fail is not None:
            raise self.fail
        n = self.prompt_tokens(messages, prefill)
        self.last_stats = GenerationStats(n, n, 5, 0.01, 0.02, 4, finish_reason="stop")


def run(backend, tmp_path, profile="quick", **kw):
    return engine.research("Do mitochondria matter?", profile=profile, backend=backend, corpus=CORPUS,
                           retrieval=False, system_info=SAMPLE["system"], telemetry_out=tmp_path / "t.json", **kw)


def written(tmp_path) -> dict:
    return json.loads((tmp_path / "t.json").read_text())


def test_a_scripted_run_succeeds(tmp_path):
    s = run(ScriptedBackend(), tmp_path)
    t = written(tmp_path)
    assert t == s.telemetry and validation_errors(t) == []
    assert t["success"] and not t["timed_out"] and t["metrics"]["tokens_generated"] == 5
    assert s.decision == "yes"


class HarnessTimeout(RunTimeout):
    """What a harness raises when its own timer fires: a subclass of RunTimeout."""


@pytest.mark.parametrize("exc_type", [RunTimeout, HarnessTimeout])
def test_a_run_timeout_marks_the_run_timed_out(tmp_path, exc_type):
    with pytest.raises(exc_type) as ei:
        run(ScriptedBackend(exc_type("run passed 45 s")), tmp_path)
    t = ei.value.research_telemetry
    assert t == written(tmp_path) and validation_errors(t) == []
    assert t["timed_out"] and not t["success"]
    assert t["errors"] == [f"{exc_type.__name__}: run passed 45 s"]
    assert t["traces"]["calls"][0]["chunks"] == 1 and t["traces"]["calls"][0]["finish_reason"] is None


def test_an_exception_named_like_a_timeout_is_not_one(tmp_path):
    class Timeout(Exception):
        pass

    with pytest.raises(engine.ResearchFailed, match="Timeout >45.0s") as ei:
        run(ScriptedBackend(Timeout("Timeout >45.0s")), tmp_path)
    t = ei.value.telemetry
    assert not t["timed_out"] and not t["success"] and validation_errors(t) == []


def test_a_backend_failure_is_research_failed_with_partial_telemetry(tmp_path):
    with pytest.raises(engine.ResearchFailed, match="^boom$") as ei:
        run(ScriptedBackend(BackendError("boom\nmore detail")), tmp_path)
    t = ei.value.telemetry
    assert t["errors"] == ["BackendError: boom"] and not t["timed_out"]
    assert t["metrics"]["tokens_generated"] == 0 and t["metrics"]["streaming_chunks"] == 1


def test_keyboard_interrupt_propagates_with_telemetry(tmp_path):
    with pytest.raises(KeyboardInterrupt) as ei:
        run(ScriptedBackend(KeyboardInterrupt()), tmp_path)
    t = ei.value.research_telemetry
    assert not t["timed_out"] and t["errors"] == ["KeyboardInterrupt: KeyboardInterrupt"]


def test_unknown_backend_name_lists_the_known_ones():
    with pytest.raises(BackendError, match="unknown backend 'vllm': use llamacpp or ollama"):
        engine.research("Is it?", backend="vllm", corpus=CORPUS)


def test_engine_never_names_exception_classes_as_strings():
    """Exceptions are recognised by type: no engine module compares a class name."""
    import re
    src = Path(engine.__file__).parent
    for f in src.rglob("*.py"):
        text = f.read_text()
        assert not re.search(r"\.__name__\s*(==|!=|in\b|not in\b)", text), f   # e.g. type(exc).__name__ in (...)
        assert "harness" not in re.sub(r'""".*?"""|#.*', "", text, flags=re.S), f   # no harness import or name


class EndlessBackend(ScriptedBackend):
    """Test double: streams a delta every 20 ms until it is closed (a run that would never end by itself)."""

    def stream(self, messages, *, max_tokens, prefill="", stop=None):
        try:
            while True:
                time.sleep(0.02)
                yield " yes"
        finally:
            self.closed = True


def test_the_engine_enforces_the_profile_timeout_with_partial_telemetry(tmp_path):
    prof = dataclasses.replace(get_profile("quick"), timeout_s=0.5)
    backend = EndlessBackend()
    t0 = time.monotonic()
    with pytest.raises(RunTimeout, match="passed its 0.5 s timeout during synthesis") as ei:
        run(backend, tmp_path, profile=prof)
    assert time.monotonic() - t0 < 0.5 + 1.0
    assert type(ei.value) is RunTimeout and backend.closed and backend.deadline is None
    t = ei.value.research_telemetry
    assert t == written(tmp_path) and validation_errors(t) == []
    assert t["timed_out"] and not t["success"] and t["early_exit"] == {"triggered": False, "batch": None,
                                                                        "reason": "timeout"}
    assert t["traces"]["calls"][0]["chunks"] >= 5 and t["traces"]["calls"][0]["finish_reason"] is None
    assert t["errors"][0].startswith("RunTimeout: the run passed its 0.5 s timeout")
    assert t["metrics"]["cpu_time_s"] is not None and t["metrics"]["execution_time_s"] < 1.5
