"""End to end on the real embedded model: claims and answers under the grammar (engine.grammar) cite only passages
in context, an extractive claim is a span of the passage it cites, a polar answer keeps its probability-picked
decision, and the greedy-first grammar sampler writes what the whole-vocabulary grammar writes."""
from pathlib import Path

import pytest

from llm_research_bench import engine
from llm_research_bench.engine.backends import Message, make_backend
from llm_research_bench.engine.claims import CitationResolver, ClaimStreamParser
from llm_research_bench.engine.corpus import load_corpus
from llm_research_bench.engine.grammar import claims_format, sentences
from llm_research_bench.engine.telemetry import validation_errors

pytestmark = pytest.mark.e2e
TOOLDOCS = Path(__file__).resolve().parents[2] / "benches" / "data" / "tooldocs"
PASSAGES = {3: "pytest-timeout aborts tests that run longer than a given number of seconds. It can use a signal or "
               "a thread to stop the test that is running.",
            4: "The timeout can be set per test with a marker, and also on the command line with an option."}
PROMPT = ("Question: What does pytest-timeout do?\n\nEvidence passages:\n"
          + "\n".join(f"[{n}] {t}" for n, t in PASSAGES.items())
          + "\n\nTask: write up to 3 short factual claims. One claim per line, ending with [n].")


@pytest.fixture(scope="module")
def backend():
    b = make_backend("llamacpp", "smollm2-135m", context_window=2048)
    yield b
    b.close()


def _claims(backend, fmt):
    r = CitationResolver()
    for _ in range(2):
        r.add(f"x{len(r.labels)}")          # labels 1 and 2: in context, but not in this batch
    r.add("p3")
    r.add("p4")
    p = ClaimStreamParser(r, require_citation=True)
    p.feed("- ")
    text = "".join(backend.stream([Message("user", PROMPT)], max_tokens=80, prefill="- ", output_format=fmt))
    return p.feed(text) + p.close(), text


def test_abstractive_claims_cite_only_the_batch_labels(backend):
    claims, text = _claims(backend, claims_format([3, 4], 3))
    assert claims, text
    assert all(c.citations and all(x.passage_id in ("p3", "p4") for x in c.citations) for c in claims)


def test_extractive_claims_are_spans_of_the_passage_they_cite(backend):
    claims, text = _claims(backend, claims_format([3, 4], 3, "extractive", PASSAGES))
    assert claims, text
    for c in claims:
        label = int(c.citations[0].passage_id[1:])
        assert any(s.startswith(c.text.rstrip(".")) for s in sentences(PASSAGES[label])), c.text


def test_the_pytest_timeout_question_answers_with_valid_citations_and_sources():
    corpus = load_corpus(TOOLDOCS)
    s = engine.research("What does pytest-timeout do?", profile="quick", corpus=corpus,
                        timeout_s=0)      # the answer is checked here, not the time (the machine may be busy)
    t = s.telemetry
    assert validation_errors(t) == [] and t["success"]
    m = t["metrics"]
    assert m["citations"] > 0 and m["citation_validity"] == 1.0
    assert t["answer"]["citations"] > 0 and t["answer"]["sources"]
    assert s.cited_sources() and m["time_to_first_claim_s"] is not None
    assert t["profile"]["claim_format"] in ("abstractive", "extractive")


def test_the_greedy_first_grammar_writes_what_the_whole_vocabulary_grammar_writes(backend):
    import llama_cpp
    for fmt in (claims_format([3, 4], 3), claims_format([3, 4], 3, "extractive", PASSAGES)):
        ours = "".join(backend.stream([Message("user", PROMPT)], max_tokens=48, prefill="- ", output_format=fmt))
        full_passes, few_passes, steps = backend.grammar_passes
        tokens = backend.tokenize(backend.render([Message("user", PROMPT)], "- "))
        backend.llm.reset()
        theirs = "".join(c["choices"][0]["text"] for c in backend.llm.create_completion(
            tokens, max_tokens=48, temperature=0.0, repeat_penalty=1.1, stream=True,
            grammar=llama_cpp.LlamaGrammar.from_string(fmt.gbnf, verbose=False)))
        assert ours == theirs
        assert full_passes < steps          # most steps never check the whole vocabulary
