"""The pipeline bench: research sessions on a small pinned question set per profile, with the embedded default
backend (llama.cpp, SmolLM2-135M) unless --research-backend says otherwise.

The set (QUICK_QUESTIONS) is chosen so that one `pytest benches -m quick` session exercises the whole pipeline:
polar PubMedQA questions (a yes/no/maybe decision) and open questions on benches/data/tooldocs (free text,
decision null); a run that the early-exit gate stops after its first batch, and runs that stream two or more
evidence batches (progressive context, KV-prefix reuse). The session's early_exit_rate and error_rate are then
rates over several runs (analysis/session.py). The set is pinned here, so that records stay comparable: changing
it starts new series.

Every question is its own bench instance (`test_pipeline[<id>-quick]`) and its own series: its runs are stored
with extra['variant'] = <id> (`pipeline[quick]/<id>`), except the lace-plant question's, which stay the series
`pipeline[quick]` that this bench measured before the set had more questions, so that its history goes on.
Budgets, verdicts and comparisons stay per question. Each run is
judged against its profile's budget for this machine class (time band, memory limit), the telemetry schema and
the quality floor, and stored under results/ (--research-rounds N repeats it after a warm-up run). The corpora,
embedder and indexes are loaded by the session warm-up (`bench_warmup`, `open_corpus`), outside the timed run.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from llm_research_bench.harness import DEFAULT_QUESTION

pytestmark = pytest.mark.pipeline


@dataclass(frozen=True)
class QuickQuestion:
    """One pinned question: `id` names it in the test id and the series (pq-<PubMedQA id>, or the tooldocs
    question's id), `corpus` is "pubmedqa" (the session's corpus, --research-corpus) or "tooldocs"
    (benches/data/tooldocs), `answer_type` what the engine detects."""
    id: str
    corpus: str
    answer_type: str
    text: str

    @property
    def variant(self) -> dict:
        """The `extra` that makes this question its own series (none for the bench's original question)."""
        return {} if self.text == DEFAULT_QUESTION else {"variant": self.id}


QUICK_QUESTIONS = (
    QuickQuestion("pq-21645374", "pubmedqa", "polar", DEFAULT_QUESTION),
    QuickQuestion("pq-16418930", "pubmedqa", "polar",
                  "Landolt C and snellen e acuity: differences in strabismus amblyopia?"),
    QuickQuestion("td001", "tooldocs", "open",
                  "How do you set a timeout for a single test with pytest-timeout?"),
)


@pytest.mark.parametrize("question", QUICK_QUESTIONS, ids=lambda q: q.id)
def test_pipeline(research_bench, profile, bench_warmup, open_corpus, question):
    corpus = open_corpus if question.corpus == "tooldocs" else None      # None: the session's (warm) corpus
    result = research_bench.run(question.text, corpus=corpus, extra=question.variant)

    tel = result.telemetry
    assert tel is not None and tel["profile"]["name"] == profile.name
    assert tel["question"]["answer_type"] == question.answer_type
    if question.answer_type == "open":
        assert tel["answer"]["decision"] is None
    # Timed on a warm cache: the warm-up built or loaded the index before the run started.
    assert tel["corpus"]["index_cache_hit"] is True
