"""Calibrated polar decisions without a model: the calibration maths, the logits processor with a prior, and the
pipeline's content-free conversation on test doubles of the backend (telemetry validated against the schema)."""
import json
from pathlib import Path

import numpy as np
import pytest

from llm_research_bench.engine.backends import Backend, Choice, GenerationStats
from llm_research_bench.engine.backends.llamacpp import FirstTokenChoice
from llm_research_bench.engine.pipeline import QuestionError
from llm_research_bench.engine.synthesis import CONTENT_FREE, DECISION_OPTIONS, calibrate, normalized, pick
from llm_research_bench.engine.telemetry import validation_errors
from tests.engine.test_answers import CORPUS, research

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "tests" / "data" / "telemetry_quick.json").read_text())


def test_normalized_sums_to_one_and_is_uniform_for_zeros():
    assert normalized({"yes": 0.2, "no": 0.6, "maybe": 0.2}) == pytest.approx({"yes": 0.2, "no": 0.6, "maybe": 0.2})
    assert normalized({"yes": 0.1, "no": 0.3, "maybe": 0.0}) == pytest.approx({"yes": 0.25, "no": 0.75, "maybe": 0.0})
    assert normalized({"yes": 0.0, "no": 0.0}) == {"yes": 0.5, "no": 0.5}


def test_calibrate_divides_by_the_prior_and_renormalizes():
    raw, prior = {"yes": 0.6, "no": 0.3, "maybe": 0.1}, {"yes": 0.8, "no": 0.1, "maybe": 0.1}
    # raw / prior = 0.75, 3, 1 -> / 4.75
    assert calibrate(raw, prior) == pytest.approx({"yes": 0.75 / 4.75, "no": 3 / 4.75, "maybe": 1 / 4.75})
    assert pick(raw) == "yes" and pick(calibrate(raw, prior)) == "no"      # the prompt's bias towards yes removed


def test_calibrate_is_the_identity_for_a_uniform_prior_and_scale_free():
    raw = {"yes": 0.5, "no": 0.2, "maybe": 0.1}
    assert calibrate(raw, {"yes": 1, "no": 1, "maybe": 1}) == pytest.approx(normalized(raw))
    assert calibrate(raw, {"yes": 0.2, "no": 0.1, "maybe": 0.1}) == pytest.approx(
        calibrate(raw, {"yes": 0.02, "no": 0.01, "maybe": 0.01}))
    assert calibrate(raw, raw) == pytest.approx({"yes": 1 / 3, "no": 1 / 3, "maybe": 1 / 3})


def test_calibrate_floors_a_zero_prior():
    out = calibrate({"yes": 0.5, "no": 0.5, "maybe": 0.0}, {"yes": 0.5, "no": 0.5, "maybe": 0.0})
    assert out == pytest.approx({"yes": 0.5, "no": 0.5, "maybe": 0.0}) and all(np.isfinite(list(out.values())))


def test_pick_breaks_ties_by_option_order():
    assert pick({"yes": 0.4, "no": 0.4, "maybe": 0.2}) == "yes"
    assert pick({"maybe": 0.4, "no": 0.4}) == "maybe"


def test_first_token_choice_with_a_prior_decides_on_the_calibrated_probabilities():
    prior = {"yes": 0.8, "no": 0.1, "maybe": 0.1}
    chooser = FirstTokenChoice({"yes": [1], "no": [3], "maybe": [5]}, {"yes": [1], "no": [3], "maybe": [5]}, prior)
    logits = np.full(8, -20.0, dtype=np.float32)
    logits[1], logits[3], logits[5] = np.log(0.6), np.log(0.3), np.log(0.1)
    forced = chooser(None, logits.copy())
    c = chooser.choice
    assert c.method == "calibrated_token_probabilities" and c.choice == "no" and np.argmax(forced) == 3
    assert c.raw == pytest.approx({"yes": 0.6, "no": 0.3, "maybe": 0.1}, abs=1e-4) and c.prior == prior
    assert c.probabilities == pytest.approx(calibrate(c.raw, prior), abs=1e-5)
    assert pick(c.raw) == "yes"


class CalibratingBackendDouble(Backend):
    """Test double of a backend that serves token probabilities and calibration, as LlamaCppBackend does: the
    content-free conversation gets `prior`, the real one `probs`; the choice is calibrated by the prior given."""
    name, model_name, supports_choice, supports_calibration = "llamacpp", "calibrating-double", True, True

    def __init__(self, probs: dict[str, float], prior: dict[str, float]):
        super().__init__()
        self.probs, self.prior, self.asked, self.priors_given = probs, prior, [], []

    def count_tokens(self, text):
        return len(text) // 4

    def render(self, messages, prefill=""):
        return "".join(m.content for m in messages) + prefill

    def first_token_probabilities(self, messages, options, prefill=""):
        self.asked.append(messages)
        return dict(self.prior), {"time_s": 0.01, "prompt_tokens": self.prompt_tokens(messages, prefill), "cached": False}

    def stream(self, messages, *, max_tokens, prefill="", stop=None, choose_first=None, choice_prior=None):
        self.priors_given.append(choice_prior)
        if choose_first:
            cal = calibrate(self.probs, choice_prior) if choice_prior else dict(self.probs)
            best = pick(cal)
            self.last_choice = (Choice(best, cal, "calibrated_token_probabilities", dict(self.probs), choice_prior)
                                if choice_prior else Choice(best, cal, raw=dict(self.probs)))
            yield choose_first[best][0]
        yield ". It does."
        n = self.prompt_tokens(messages, prefill)
        self.last_stats = GenerationStats(n, n, 4, 0.01, 0.02, 3, finish_reason="stop")


def test_a_closed_book_decision_is_calibrated_by_its_content_free_conversation():
    b = CalibratingBackendDouble({"yes": 0.6, "no": 0.3, "maybe": 0.1}, {"yes": 0.8, "no": 0.1, "maybe": 0.1})
    s = research(b, decision_calibration="content_free")
    a = s.telemetry["answer"]
    assert s.decision == "no" and s.answer.startswith("Answer: no")
    assert a["decision_method"] == "calibrated_token_probabilities"
    assert a["decision_probabilities"] == pytest.approx(calibrate(b.probs, b.prior))
    cal = a["decision_calibration"]
    assert cal["method"] == "content_free" and cal["placeholder"] == CONTENT_FREE and cal["prior"] == b.prior
    assert cal["raw_probabilities"] == b.probs and cal["time_s"] == 0.01 and cal["cached"] is False
    (blank,) = b.asked
    assert len(blank) == 1 and "mitochondria" not in blank[0].content.lower() and CONTENT_FREE in blank[0].content
    assert b.priors_given == [b.prior] and validation_errors(s.telemetry) == []


def test_calibration_off_decides_on_the_raw_probabilities():
    b = CalibratingBackendDouble({"yes": 0.6, "no": 0.3, "maybe": 0.1}, {"yes": 0.8, "no": 0.1, "maybe": 0.1})
    s = research(b, decision_calibration="none")
    a = s.telemetry["answer"]
    assert s.decision == "yes" and a["decision_method"] == "token_probabilities" and b.asked == []
    assert a["decision_calibration"] is None and validation_errors(s.telemetry) == []


def test_an_unknown_calibration_is_refused_before_the_run():
    with pytest.raises(QuestionError, match="decision_calibration"):
        research(CalibratingBackendDouble({}, {}), decision_calibration="platt")


def test_an_open_question_asks_for_no_calibration():
    b = CalibratingBackendDouble({"yes": 0.6, "no": 0.3, "maybe": 0.1}, {"yes": 0.8, "no": 0.1, "maybe": 0.1})
    s = research(b, question="What do mitochondria do before the cell dies?")
    assert s.decision is None and b.asked == [] and s.telemetry["answer"]["decision_calibration"] is None


def test_answer_tokens_caps_the_answer_call():
    b = CalibratingBackendDouble({"yes": 0.6, "no": 0.3, "maybe": 0.1}, {"yes": 0.8, "no": 0.1, "maybe": 0.1})
    seen = []
    orig = b.stream

    def stream(messages, **kw):
        seen.append(kw["max_tokens"])
        return orig(messages, **kw)
    b.stream = stream
    research(b, answer_tokens=16)
    assert seen == [16]


def test_the_schema_still_accepts_a_record_without_calibration():
    doc = json.loads(json.dumps(SAMPLE))
    doc["answer"].pop("decision_calibration", None)
    assert validation_errors(doc) == []


def test_relative_calibration_keeps_the_closed_book_prompts_bias():
    """Closed-book under "relative": its conversation is the reference itself, so the raw probabilities decide."""
    b = CalibratingBackendDouble({"yes": 0.6, "no": 0.3, "maybe": 0.1}, {"yes": 0.8, "no": 0.1, "maybe": 0.1})
    s = research(b)                                   # relative is the default
    cal = s.telemetry["answer"]["decision_calibration"]
    assert s.decision == "yes" and cal["method"] == "relative" and cal["reference_prior"] == b.prior
    assert cal["time_s"] == pytest.approx(0.02) and len(b.asked) == 2
    assert s.telemetry["answer"]["decision_probabilities"] == pytest.approx(normalized(b.probs), abs=1e-6)
    assert validation_errors(s.telemetry) == []
