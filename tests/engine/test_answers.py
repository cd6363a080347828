"""Answers to the question asked: polar detection, the decision picked from token probabilities, open answers.

The decision logic is tested on a test double of the backend (ChoosingBackendDouble: it reports a Choice the
way llama.cpp's logits processor does) and on the logits processor itself with hand-made logits."""
import json
from pathlib import Path

import numpy as np
import pytest

from llm_research_bench import engine
from llm_research_bench.engine.backends import Backend, Choice, GenerationStats
from llm_research_bench.engine.backends.llamacpp import FirstTokenChoice
from llm_research_bench.engine.claims import CitationResolver, answer_sentences
from llm_research_bench.engine.corpus import Corpus, Passage, load_corpus
from llm_research_bench.engine.synthesis import (DECISION_OPTIONS, detect_answer_type, parse_decision,
                                                 resolve_answer_type)
from llm_research_bench.engine.telemetry import validation_errors

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "tests" / "data" / "telemetry_quick.json").read_text())


@pytest.mark.parametrize("q,kind", [
    ("Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?", "polar"),
    ("Is DiskCache thread-safe and process-safe?", "polar"),
    ("Sternal fracture in growing children: a rare and often overlooked fracture?", "polar"),
    ("Can't we just wait?", "polar"),
    ("How do you set a timeout for a single test with pytest-timeout?", "open"),
    ("What is Memray?", "open"),
    ("In which ways can a global timeout be configured?", "open"),
    ("Vitamin D in pregnancy: what is known?", "open"),
    ("Explain the thread timeout method", "open"),
    ("The tabulate table formats", "open"),
])
def test_detect_answer_type(q, kind):
    assert detect_answer_type(q) == kind


def test_detection_on_the_committed_corpora():
    pub = load_corpus()
    assert all(detect_answer_type(q.question) == "polar" for q in pub.questions)          # 1,000 of 1,000
    td = load_corpus(ROOT / "benches" / "data" / "tooldocs")
    kinds = [detect_answer_type(q.question) for q in td.questions]
    assert kinds.count("open") == len(kinds) - 1          # one genuinely polar question ("Is DiskCache ...?")


def test_resolve_answer_type():
    assert resolve_answer_type("What is X?", "auto") == ("open", "detected")
    assert resolve_answer_type("What is X?", "polar") == ("polar", "given")
    with pytest.raises(ValueError):
        resolve_answer_type("What is X?", "yesno")


def test_first_token_choice_picks_by_summed_probability_and_forces_the_word():
    vocab = 10
    # tokens: yes=1, Yes=2, no=3, No=4, maybe=5; the raw argmax is token 0 (neither)
    chooser = FirstTokenChoice({"yes": [1], "no": [3], "maybe": [5]}, {"yes": [1, 2], "no": [3, 4], "maybe": [5]})
    logits = np.full(vocab, -5.0, dtype=np.float32)
    logits[0], logits[1], logits[2], logits[3], logits[4] = 3.0, 1.0, 1.0, 1.5, -9.0
    first = chooser(None, logits.copy())
    assert chooser.choice.choice == "yes"               # 2 x e^1 > e^1.5 + e^-9: summed over spellings
    p = chooser.choice.probabilities
    assert p["yes"] > p["no"] > p["maybe"] and sum(p.values()) < 1
    assert np.argmax(first) == 1 and np.isinf(first[0]) and first[0] < 0
    later = chooser(None, logits.copy())               # after the forced word the logits are left alone
    assert np.array_equal(later, logits)


def test_first_token_choice_forces_a_multi_token_word_step_by_step():
    chooser = FirstTokenChoice({"yes": [1], "no": [2], "maybe": [7, 8]}, {"yes": [1], "no": [2], "maybe": [7]})
    logits = np.zeros(10, dtype=np.float32)
    logits[7] = 4.0
    assert np.argmax(chooser(None, logits.copy())) == 7 and chooser.choice.choice == "maybe"
    assert np.argmax(chooser(None, logits.copy())) == 8
    assert np.array_equal(chooser(None, logits.copy()), logits)


class ChoosingBackendDouble(Backend):
    """Test double of a backend that exposes token probabilities: it writes the chosen word first and reports
    the Choice, as LlamaCppBackend does with FirstTokenChoice."""
    name, model_name, supports_choice = "llamacpp", "choosing-double", True

    def __init__(self, probs: dict[str, float], text: str = ". Mitochondria move [1]."):
        super().__init__()
        self.probs, self.text, self.asked = probs, text, []

    def count_tokens(self, text):
        return len(text) // 4

    def render(self, messages, prefill=""):
        return "".join(m.content for m in messages) + prefill

    def stream(self, messages, *, max_tokens, prefill="", stop=None, choose_first=None):
        self.asked.append(choose_first)
        if choose_first:
            best = max(self.probs, key=self.probs.get)
            self.last_choice = Choice(best, dict(self.probs))
            yield choose_first[best][0]
        yield self.text
        n = self.prompt_tokens(messages, prefill)
        self.last_stats = GenerationStats(n, n, 6, 0.01, 0.02, 5, finish_reason="stop")


class ParsingBackendDouble(ChoosingBackendDouble):
    """Test double of a backend without token probabilities (like Ollama): the decision is parsed."""
    supports_choice = False

    def stream(self, messages, *, max_tokens, prefill="", stop=None):
        yield self.text
        n = self.prompt_tokens(messages, prefill)
        self.last_stats = GenerationStats(n, n, 6, 0.01, 0.02, 5, finish_reason="stop")


CORPUS = Corpus([Passage("p1", "Mitochondria change shape before the cell dies.")], [], "memory", "jsonl")


def research(backend, question="Do mitochondria matter?", **kw):
    return engine.research(question, profile="quick", backend=backend, corpus=CORPUS, retrieval=False,
                           system_info=SAMPLE["system"], **kw)


def test_a_polar_question_gets_the_models_most_probable_decision():
    b = ChoosingBackendDouble({"yes": 0.2, "no": 0.5, "maybe": 0.1})
    s = research(b)
    a = s.telemetry["answer"]
    assert s.decision == "no" and a["decision_method"] == "token_probabilities"
    assert a["decision_probabilities"] == {"yes": 0.2, "no": 0.5, "maybe": 0.1}
    assert s.answer.startswith("Answer: no") and b.asked == [DECISION_OPTIONS]
    assert s.telemetry["question"]["answer_type"] == "polar" and validation_errors(s.telemetry) == []


def test_an_open_question_gets_free_text_and_no_decision():
    b = ChoosingBackendDouble({"yes": 0.9, "no": 0.05, "maybe": 0.05}, text=" Mitochondria change shape [1].")
    s = research(b, question="What do mitochondria do before the cell dies?")
    assert s.decision is None and b.asked == [None]
    a = s.telemetry["answer"]
    assert a["decision"] is None and a["decision_method"] is None and a["decision_probabilities"] is None
    assert s.telemetry["question"] == {**s.telemetry["question"], "answer_type": "open", "answer_type_source": "detected"}
    assert validation_errors(s.telemetry) == []


def test_a_flag_overrides_detection():
    s = research(ChoosingBackendDouble({"yes": 0.6, "no": 0.3, "maybe": 0.1}), question="What do mitochondria do?",
                 answer_type="polar")
    assert s.decision == "yes" and s.telemetry["question"]["answer_type_source"] == "given"


def test_without_token_probabilities_the_decision_is_parsed():
    s = research(ParsingBackendDouble({}, text=" maybe, it depends."))
    assert s.decision == "maybe" and s.telemetry["answer"]["decision_method"] == "parsed"
    s2 = research(ParsingBackendDouble({}, text=" it depends."))
    assert s2.decision is None and s2.telemetry["answer"]["decision_method"] is None


def test_parse_decision():
    assert parse_decision("Answer: yes, because") == "yes"
    assert parse_decision("Answer: **No**") == "no"
    assert parse_decision("nothing here") is None


def test_answer_sentences_carry_the_answers_citations():
    r = CitationResolver()
    r.add("p1"), r.add("p2")
    got = answer_sentences("Answer: yes. Mitochondria move early [1]. They swell later [2][9]. No cite here.", r)
    assert [c.text for c in got] == ["Mitochondria move early.", "They swell later."]
    assert [[x.passage_id for x in c.citations] for c in got] == [["p1"], ["p2", None]]
