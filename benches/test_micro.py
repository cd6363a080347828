"""Micro benches of the engine's hot paths with pytest-benchmark (its own storage and comparison:
`pytest benches -m micro --benchmark-autosave`, then `--benchmark-compare`). Marked `micro` only, so
`pytest benches -m quick` never selects them.

Inputs are real: the PubMedQA index and embeddings built by the session warm-up, the corpus's own passages,
and a telemetry document recorded from a real quick run (tests/data/telemetry_quick.json).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_research_bench.harness.plugin.fixtures import context_of

pytestmark = pytest.mark.micro

TELEMETRY = Path(__file__).resolve().parents[1] / "tests" / "data" / "telemetry_quick.json"


def pytest_generate_tests(metafunc):
    """Retrieval is measured at every ef_search a profile uses (names and values from the profiles)."""
    if "ef_search" in metafunc.fixturenames:
        profiles = context_of(metafunc.config).options.profiles.values()
        pairs = sorted({(p.ef_search, p.retrieve_k) for p in profiles})
        metafunc.parametrize("ef_search,retrieve_k", pairs, ids=[f"ef{e}-k{k}" for e, k in pairs])


@pytest.fixture(scope="module")
def index(bench_warmup):
    from llm_research_bench.engine.embed import shared_embedder
    from llm_research_bench.engine.index import HNSWIndex
    return HNSWIndex.build_or_load(bench_warmup.corpus, shared_embedder())


@pytest.fixture(scope="module")
def query_vector(bench_warmup, bench_question):
    from llm_research_bench.engine.embed import shared_embedder
    return shared_embedder().encode([bench_question])[0]


def test_retrieval(benchmark, index, query_vector, ef_search, retrieve_k):
    hits = benchmark(index.search, query_vector, retrieve_k, ef_search)
    assert len(hits) == retrieve_k


@pytest.mark.parametrize("batch,context", [(8, 8), (8, 64), (16, 256)], ids=lambda n: str(n))
def test_novelty_scoring(benchmark, index, batch, context):
    from llm_research_bench.engine.novelty import novelty
    vecs = index.vectors
    b, c = vecs[:batch], vecs[batch:batch + context]
    score = benchmark(novelty, b, c)
    assert 0.0 <= score <= 1.0


@pytest.fixture(scope="module")
def claim_stream(bench_warmup):
    """What a claims call streams: one claim per line with bracketed labels, cut into the small deltas a
    model emits (4 characters), built from the corpus's own sentences."""
    passages = bench_warmup.corpus.passages[:24]
    lines = []
    for i, p in enumerate(passages):
        sentence = p.text.split(". ")[0][:160]
        lines.append(f"- {sentence} [{i + 1}][{(i + 3) % 24 + 1}]")
    text = "\n".join(lines) + "\n"
    return [text[i:i + 4] for i in range(0, len(text), 4)], [p.id for p in passages]


def test_claim_parsing(benchmark, claim_stream):
    from llm_research_bench.engine.claims import CitationResolver, ClaimStreamParser

    deltas, ids = claim_stream

    def parse():
        resolver = CitationResolver()
        for pid in ids:
            resolver.add(pid)
        parser = ClaimStreamParser(resolver)
        for d in deltas:
            parser.feed(d)
        parser.close()
        return parser.claims

    claims = benchmark(parse)
    assert len(claims) >= 20 and all(c.citations for c in claims)


def test_schema_validation(benchmark):
    from llm_research_bench.engine.telemetry import validation_errors
    doc = json.loads(TELEMETRY.read_text())
    errors = benchmark(validation_errors, doc)
    assert errors == []
