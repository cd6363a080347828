"""End to end on the real embedded model (SmolLM2-135M via llama.cpp) over a small PubMedQA slice."""
import json

import pytest

from llm_research_bench import engine
from llm_research_bench.engine.corpus import DEFAULT_PUBMEDQA, load_corpus
from llm_research_bench.engine.runlog import CallRecord
from llm_research_bench.engine.telemetry import validation_errors

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def slice_corpus():
    return load_corpus(DEFAULT_PUBMEDQA).slice(12)


@pytest.fixture(scope="module")
def session(slice_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("tel") / "t.json"
    q = slice_corpus.questions[0].question
    events = []
    s = engine.research(q, profile="quick", corpus=slice_corpus, telemetry_out=out,
                        on_event=lambda k, d: events.append((k, d)))
    return s, out, events


def test_run_produces_valid_measured_telemetry(session):
    s, out, events = session
    tel = json.loads(out.read_text())
    assert validation_errors(tel) == []
    m = tel["metrics"]
    assert tel["success"] and tel["backend"] == "llamacpp" and tel["model"]["name"] == "smollm2-135m"
    assert m["tokens_generated"] > 0 and m["streaming_chunks"] > 0
    assert m["valid_citations"] >= 1 and m["claims"] >= 1
    assert m["tokens_per_second"] > 0 and m["ttft_s"] > 0
    assert m["memory_peak_mb"] > 100 and m["memory_sample_hz"] >= 20
    assert tel["traces"]["novelty"] and tel["traces"]["batch_size"]
    assert len(tel["traces"]["novelty"]) == len(tel["traces"]["batches"])
    assert sum(tel["phases"].values()) == pytest.approx(m["execution_time_s"], rel=0.05)
    assert "text" not in tel["question"]              # privacy: hash + length only by default
    assert {"phase", "batch", "claim", "answer_delta", "batch_done"} <= {k for k, _ in events}
    done = [d["call"] for k, d in events if k == "batch_done"]
    assert all(isinstance(c, CallRecord) and c.kind == "claims" and c.complete for c in done)
    assert [c.as_trace() for c in done] == tel["traces"]["calls"][:len(done)]


def test_progressive_context_reuses_the_kv_prefix(session):
    s, _, _ = session
    m = s.telemetry["metrics"]
    calls = s.telemetry["traces"]["calls"]
    assert len(calls) >= 2
    assert all(c["prompt_tokens_evaluated"] < c["prompt_tokens"] for c in calls[1:])
    assert m["prefix_reuse_ratio"] <= 1.15


def test_session_object_carries_answer_and_sources(session):
    s, _, _ = session
    assert s.answer.startswith("Answer:")
    assert s.cited_sources() and all(pid in s.passages for _, pid in s.cited_sources())


def test_closed_book_run_has_no_evidence(slice_corpus):
    s = engine.research(slice_corpus.questions[1].question, profile="quick", corpus=slice_corpus, retrieval=False)
    t = s.telemetry
    assert t["profile"]["retrieval"] == "none" and t["traces"]["batches"] == [] and t["metrics"]["tokens_generated"] > 0
    assert validation_errors(t) == []


def test_gemma_base_model_runs_with_its_own_turn_format(slice_corpus):
    s = engine.research(slice_corpus.questions[2].question, profile="quick", corpus=slice_corpus, retrieval=False,
                        model="gemma3-270m")
    t = s.telemetry
    assert t["model"]["name"] == "gemma3-270m" and t["model"]["chat_format"] == "gemma"
    assert t["metrics"]["tokens_generated"] > 0 and validation_errors(t) == []
