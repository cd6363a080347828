"""engine.runlog records and engine.telemetry.build, with no model: the document is built from RunFacts alone."""
import copy
import json
from pathlib import Path

import pytest

from llm_research_bench.engine.backends import GenerationStats
from llm_research_bench.engine.batching import BatchDecision
from llm_research_bench.engine.claims import Citation, Claim
from llm_research_bench.engine.profiles import get_profile
from llm_research_bench.engine.runlog import BatchRecord, CallRecord, EarlyExit, RunFacts
from llm_research_bench.engine.stream import CallTiming
from llm_research_bench.engine.telemetry import build, sha256, validation_errors

# A real quick run's telemetry, recorded at schema 1.1 with its three renamed metrics under their 1.2 names
# (tests/data/telemetry_quick.json is the same run's kind at 1.0, kept for the harness tests: 1.0 documents stay
# readable and their names are mapped).
SAMPLE = json.loads((Path(__file__).parents[1] / "data" / "telemetry_quick_1_2.json").read_text())
CALL_TRACE_KEYS = ["kind", "prompt_tokens", "prompt_tokens_evaluated", "tokens_generated", "ttft_s", "e2e_s",
                   "native_prompt_eval_s", "native_decode_s", "native_decode_tokens", "chunks", "finish_reason",
                   "tokens_sampled"]


def timing(t0: float, chunks: list[float]) -> CallTiming:
    return CallTiming(sent_at=t0, first_chunk_at=chunks[0] if chunks else None, ended_at=(chunks or [t0])[-1] + 0.1,
                      chunk_times=list(chunks))


def test_call_record_from_timing_and_stats():
    st = GenerationStats(100, 40, 8, 0.2, 0.7, 7, finish_reason="stop")
    c = CallRecord.measured("claims", timing(1.0, [1.5, 1.6, 1.8]), st)
    assert (c.prompt_tokens, c.prompt_tokens_evaluated, c.tokens_generated, c.chunks, c.complete) == (100, 40, 8, 3, True)
    assert c.ttft_s == pytest.approx(0.5) and c.e2e_s == pytest.approx(0.9)
    t = c.as_trace()
    assert list(t) == CALL_TRACE_KEYS
    assert (t["native_prompt_eval_s"], t["native_decode_s"], t["native_decode_tokens"], t["finish_reason"]) == \
        (0.2, 0.7, 7, "stop")


def test_call_record_of_a_call_without_stats():
    c = CallRecord.measured("synthesis", timing(0.0, []), None)
    assert not c.complete and c.ttft_s is None
    assert c.as_trace() == {"kind": "synthesis", "prompt_tokens": 0, "prompt_tokens_evaluated": 0,
                            "tokens_generated": 0, "ttft_s": None, "e2e_s": pytest.approx(0.1),
                            "native_prompt_eval_s": None, "native_decode_s": None, "native_decode_tokens": None,
                            "chunks": 0, "finish_reason": None, "tokens_sampled": None}


def test_batch_record_trace_has_counts_only_once_streamed():
    b = BatchRecord(index=0, size=2, passage_ids=["p1", "p2"], novelty=1.0, admitted=True)
    assert b.as_trace() == {"index": 0, "size": 2, "passage_ids": ["p1", "p2"], "novelty": 1.0, "admitted": True}
    assert not b.streamed
    b.claims, b.valid_citations, b.invalid_citations = 3, 2, 0
    assert list(b.as_trace()) == ["index", "size", "passage_ids", "novelty", "admitted", "claims",
                                  "valid_citations", "invalid_citations"]
    assert b.streamed and b.as_trace()["invalid_citations"] == 0
    refused = BatchRecord(index=1, size=2, passage_ids=["p3"], novelty=0.05, admitted=False)
    assert not refused.streamed and "claims" not in refused.as_trace()


def claim(text: str, *valid: bool) -> Claim:
    return Claim(text=text, citations=[Citation(raw=str(i + 1), passage_id=f"p{i + 1}" if v else None,
                                                valid=v) for i, v in enumerate(valid)], batch=0)


def facts(**over) -> RunFacts:
    prof = get_profile("quick")
    calls = [CallRecord.measured("claims", timing(0.0, [0.5, 0.6, 0.7]), GenerationStats(400, 400, 10, 0.4, 0.2, 9, finish_reason="stop")),
             CallRecord.measured("synthesis", timing(1.0, [1.3, 1.4]), GenerationStats(500, 90, 6, 0.1, 0.1, 5, finish_reason="stop"))]
    tms = [timing(0.0, [0.5, 0.6, 0.7]), timing(1.0, [1.3, 1.4])]
    b0 = BatchRecord(0, 2, ["p1", "p2"], 1.0, True, claims=2, valid_citations=2, invalid_citations=1)
    b1 = BatchRecord(1, 2, ["p3", "p4"], 0.0812, False)
    base = dict(
        run_id="r" * 32, started_at="2026-01-01T00:00:00.000+00:00", profile=prof, memory_limit_mb=4096.0,
        backend="llamacpp", model=copy.deepcopy(SAMPLE["model"]), llm_accelerator="cpu", token_count_method="tokenizer",
        retrieval=True, early_exit_enabled=True, corpus_id="c" * 16, corpus_format="pubmedqa", corpus_passages=4,
        corpus_skipped_lines=0, index_cache_hit=True, embedding_model="all-MiniLM-L6-v2", embedding_device="cpu",
        question="Is it? mail a@b.org", gold_answer="yes", gold_passage_ids=["p1"], execution_time_s=2.123456,
        phase_s={"plan": 0.1, "evidence_processing": 0.5, "streaming_inference": 1.0, "synthesis": 0.523456},
        calls=calls, timings=tms, batches=[b0, b1],
        batch_size_decisions=[BatchDecision(0, 0.3, 0.3, 0.1, 8, 9, "grow"), BatchDecision(1, 0.3, 0.3, 0.1, 9, 10, "grow")],
        novelty_trace=[1.0, 0.0812], claims=[claim("A.", True, False), claim("B.", True)],
        memory_peak_mb=812.34, memory_samples=100, memory_sample_hz=49.5, ru_maxrss_mb=800.04,
        final_context_tokens=506, early_exit=EarlyExit("novelty_below_threshold", 1, 0.0812, 0.6),
        answer="Answer: yes [1]", decision="yes", answer_sources=["p1"], errors=[], cpu_time_s=3.2104,
        threads={"n_threads": 1, "source": "measured", "reason": "1 of 2 CPUs free: ...", "allowed_cpus": 2,
                 "physical_cores": 2, "quota_cpus": None, "other_busy_cores": 1.01, "window_s": 0.25})
    base.update(over)
    return RunFacts(**base)


def test_built_document_is_schema_valid_and_measured(monkeypatch):
    monkeypatch.delenv("RESEARCH_BENCH_HASH_KEY", raising=False)
    doc = build(facts(), system=SAMPLE["system"], success=True)
    assert validation_errors(doc) == []
    # the layout of a recorded run, plus the thread choice beside the model
    assert [k for k in doc if k != "threads"] == list(SAMPLE) and list(doc).index("threads") == list(doc).index("model") + 1
    m = doc["metrics"]
    assert set(m) == set(SAMPLE["metrics"]) | {"cpu_time_s", "time_to_first_claim_s", "claims_rejected"}
    assert m["tokens_generated"] == 16 and m["prompt_tokens_evaluated"] == 490 and m["unique_context_tokens"] == 500
    assert m["tokens_per_second"] == round(14 / 0.3, 6)         # floats are rounded to 6 places
    assert m["prompt_eval_tokens_per_second"] == 980.0
    assert m["batches"] == 1 and m["claims"] == 2 and (m["citations"], m["valid_citations"], m["invalid_citations"]) == (3, 2, 1)
    assert m["progressive_quality_score"] == 1.0 and m["streaming_chunks"] == 5
    assert m["execution_time_s"] == 2.1235 and m["memory_peak_mb"] == 812.3 and m["ru_maxrss_mb"] == 800.0
    assert m["cpu_time_s"] == 3.21 and doc["threads"]["n_threads"] == 1 and doc["threads"]["source"] == "measured"
    assert m["context_utilization"] == round(506 / 4096, 6)
    assert doc["phases"] == {"plan_s": 0.1, "evidence_processing_s": 0.5, "streaming_inference_s": 1.0, "synthesis_s": 0.5235}
    assert doc["traces"]["batches"][1] == {"index": 1, "size": 2, "passage_ids": ["p3", "p4"], "novelty": 0.0812,
                                           "admitted": False}
    assert [list(c) for c in doc["traces"]["calls"]] == [CALL_TRACE_KEYS] * 2
    assert doc["question"] == {"sha256": sha256("Is it? mail a@b.org"), "hash": "sha256", "length": 19, "gold_answer": "yes",
                               "gold_passage_ids": ["p1"], "answer_type": "polar", "answer_type_source": "given"}
    assert m["answer_citations"] == 0 and m["grounded_citations"] == 0 and m["grounded_citation_rate"] == 0.0
    assert doc["schema_version"] == "1.2" and doc["traces"]["gate"] == [] and doc["traces"]["grounding"] == []
    for k, v in m.items():
        if v is None:
            assert doc["unmeasured"].get(k), k
    assert doc["success"] and not doc["timed_out"]


def test_a_free_text_gold_answer_is_only_hashed():
    doc = build(facts(gold_answer="Mitochondria move first."), system=SAMPLE["system"], success=True)
    assert doc["question"]["gold_answer"] is None
    assert doc["question"]["gold_answer_sha256"] == sha256("Mitochondria move first.")
    assert validation_errors(doc) == []


def test_store_text_keeps_redacted_text():
    doc = build(facts(), system=SAMPLE["system"], store_text=True, success=True)
    assert doc["question"]["text"] == "Is it? mail [email]" and doc["answer"]["text"] == "Answer: yes [1]"


def test_a_run_that_failed_before_any_call():
    f = facts(model=None, token_count_method=None, calls=[], timings=[], batches=[], batch_size_decisions=[],
              novelty_trace=[], claims=[], memory_peak_mb=None, memory_samples=0, memory_sample_hz=None,
              final_context_tokens=0, answer="", decision=None, answer_sources=[], errors=["BackendError: boom"],
              early_exit=EarlyExit("evidence_exhausted"))
    doc = build(f, system=SAMPLE["system"], success=False, timed_out=True)
    assert validation_errors(doc) == []
    assert doc["model"] == {"name": "(not loaded)"} and doc["timed_out"] and not doc["success"]
    assert doc["metrics"]["ttft_s"] is None and doc["unmeasured"]["ttft_s"] == "no generation call completed"
    assert doc["metrics"]["memory_peak_mb"] is None and doc["unmeasured"]["memory_peak_mb"]


def test_cpu_time_unmeasured_and_threads_without_a_backend():
    doc = build(facts(model=None, cpu_time_s=None, threads=None), system=SAMPLE["system"], success=False)
    assert validation_errors(doc) == []
    assert doc["metrics"]["cpu_time_s"] is None and "psutil" in doc["unmeasured"]["cpu_time_s"]
    assert doc["threads"] == {"n_threads": None, "source": "none", "reason": "no model was loaded"}


def test_an_interrupted_call_keeps_its_counters_and_a_mismatch_is_shown():
    st = GenerationStats(300, 120, 7, 0.3, 0.05, 6, finish_reason=None, tokens_sampled=7,
                         counter_mismatch="5 decode steps for 7 sampled tokens (expected 6)")
    c = CallRecord.measured("claims", timing(0.0, [0.5, 0.6]), st)
    t = c.as_trace()
    assert c.complete and t["finish_reason"] is None and t["tokens_generated"] == 7 and t["tokens_sampled"] == 7
    assert t["counter_mismatch"].startswith("5 decode steps")
    doc = build(facts(calls=[c], timings=[timing(0.0, [0.5, 0.6])]), system=SAMPLE["system"], success=False,
                timed_out=True)
    assert validation_errors(doc) == []


def test_ollama_token_estimate_is_noted():
    doc = build(facts(token_count_method="estimate"), system=SAMPLE["system"], success=True)
    assert "estimate" in doc["unmeasured"]["unique_context_tokens_method"]


def test_the_early_exit_block_keeps_its_layout():
    """Only a novelty stop is triggered, and only it carries the batch's novelty and the threshold."""
    assert EarlyExit().as_dict() == {"triggered": False, "batch": None, "reason": "evidence_exhausted"}
    assert EarlyExit("context_full", 2).as_dict() == {"triggered": False, "batch": 2, "reason": "context_full"}
    assert EarlyExit("novelty_below_threshold", 1, 0.41, 0.6).as_dict() == {
        "triggered": True, "batch": 1, "reason": "novelty_below_threshold", "novelty": 0.41, "threshold": 0.6}
    with pytest.raises(ValueError):
        EarlyExit("bored")
