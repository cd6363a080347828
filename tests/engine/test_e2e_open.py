"""End to end on the real embedded model over a small slice of the open-question corpus (benches/data/tooldocs):
a free-text answer with decision null and a grounded-citation rate; a polar question's decision picked from
llama.cpp's token probabilities; a single-shot run."""
import pytest

from llm_research_bench import engine
from llm_research_bench.engine.corpus import DEFAULT_PUBMEDQA, load_corpus
from llm_research_bench.engine.telemetry import validation_errors
from pathlib import Path

pytestmark = pytest.mark.e2e
TOOLDOCS = Path(__file__).resolve().parents[2] / "benches" / "data" / "tooldocs"


@pytest.fixture(scope="module")
def tooldocs():
    return load_corpus(TOOLDOCS).slice(8)


def test_an_open_question_gets_a_free_text_answer_with_grounded_citations(tooldocs):
    q = tooldocs.questions[0]
    s = engine.research(q.question, profile="quick", corpus=tooldocs)
    t = s.telemetry
    assert validation_errors(t) == [] and t["success"]
    assert t["question"]["answer_type"] == "open" and t["question"]["answer_type_source"] == "detected"
    assert s.decision is None and t["answer"]["decision"] is None and t["answer"]["decision_method"] is None
    assert len(s.answer) > len("Answer:") + 20
    m = t["metrics"]
    assert "grounded_citation_rate" in m and m["grounded_citations"] <= m["citations"] + m["answer_citations"]
    checks = t["traces"]["grounding"]
    assert len(checks) == m["citations"] + m["answer_citations"]
    assert all((c["passage_id"] is None) == (c["similarity"] is None) for c in checks)
    gate = t["traces"]["gate"]
    assert gate and gate[0]["reason"] == "first_batch" and len(gate) == len(t["traces"]["novelty"])
    assert t["question"]["gold_answer"] is None and len(t["question"]["gold_answer_sha256"]) == 64


def test_a_polar_question_gets_a_decision_from_token_probabilities():
    corpus = load_corpus(DEFAULT_PUBMEDQA).slice(4)
    s = engine.research(corpus.questions[1].question, profile="quick", corpus=corpus)
    a = s.telemetry["answer"]
    assert s.decision in ("yes", "no", "maybe") and a["decision_method"] == "calibrated_token_probabilities"
    probs, raw = a["decision_probabilities"], a["decision_calibration"]["raw_probabilities"]
    assert set(probs) == set(raw) == {"yes", "no", "maybe"} and 0 < sum(raw.values()) <= 1
    assert sum(probs.values()) == pytest.approx(1, abs=1e-5)      # calibrated: normalized over the options
    assert max(probs, key=probs.get) == s.decision and s.answer.startswith(f"Answer: {s.decision}")


def test_single_shot_is_one_prompt_and_one_answer(tooldocs):
    s = engine.research(tooldocs.questions[3].question, profile="quick", corpus=tooldocs, strategy="single_shot")
    t = s.telemetry
    assert validation_errors(t) == [] and t["profile"]["strategy"] == "single_shot"
    assert [c["kind"] for c in t["traces"]["calls"]] == ["synthesis"]
    b = t["traces"]["batches"]
    assert len(b) == 1 and b[0]["size"] >= 1 and t["early_exit"]["reason"] == "single_shot"
    assert t["metrics"]["claims"] == 0
