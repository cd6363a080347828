"""The pipeline bench: one research session on PubMedQA's lace-plant question per profile, with the embedded
default backend (llama.cpp, SmolLM2-135M) unless --research-backend says otherwise.

Each run is judged against its profile's budget for this machine class (time band, memory limit), the
telemetry schema and the quality floor, and stored under results/ (one record per run; --research-rounds N repeats it
after a warm-up run). The corpus, embedder and index are loaded by the session warm-up (`bench_warmup`),
outside the timed run: budgets measure research on a warm cache.
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.pipeline


def test_pipeline(research_bench, profile, bench_warmup, bench_question):
    result = research_bench.run(bench_question)

    tel = result.telemetry
    assert tel is not None and tel["profile"]["name"] == profile.name
    # Timed on a warm cache: the warm-up built or loaded the index before the run started.
    assert tel["corpus"]["index_cache_hit"] is True
