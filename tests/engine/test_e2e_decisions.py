"""End to end on the real embedded model: a polar run's decision is calibrated by its content-free conversation,
its telemetry holds the raw and calibrated probabilities, the prior, its cost and the method, and validates."""
import json

import pytest

from llm_research_bench import engine
from llm_research_bench.engine.corpus import DEFAULT_PUBMEDQA, load_corpus
from llm_research_bench.engine.synthesis import CONTENT_FREE, calibrate, normalized, pick
from llm_research_bench.engine.telemetry import validation_errors

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def polar_runs(tmp_path_factory):
    corpus = load_corpus(DEFAULT_PUBMEDQA).slice(4)
    q = corpus.questions[2].question
    out = tmp_path_factory.mktemp("tel") / "polar.json"
    progressive = engine.research(q, profile="quick", corpus=corpus, answer_type="polar", telemetry_out=out,
                                 timeout_s=0)
    closed = engine.research(q, profile="quick", corpus=corpus, answer_type="polar", retrieval=False,
                             answer_tokens=16, timeout_s=0)
    return progressive, json.loads(out.read_text()), closed, (q, corpus)


@pytest.mark.parametrize("which", ["progressive", "closed_book"])
def test_a_polar_runs_telemetry_holds_raw_and_calibrated_probabilities(polar_runs, which):
    s = polar_runs[0] if which == "progressive" else polar_runs[2]
    t = polar_runs[1] if which == "progressive" else s.telemetry
    assert validation_errors(t) == [] and t["success"]
    a = t["answer"]
    assert a["decision_method"] == "calibrated_token_probabilities"
    cal = a["decision_calibration"]
    assert cal["method"] == "relative" and cal["placeholder"] == CONTENT_FREE
    raw, prior, ref, probs = cal["raw_probabilities"], cal["prior"], cal["reference_prior"], a["decision_probabilities"]
    assert set(raw) == set(prior) == set(ref) == set(probs) == {"yes", "no", "maybe"}
    assert 0 < sum(raw.values()) <= 1 and 0 < sum(prior.values()) <= 1 and 0 < sum(ref.values()) <= 1
    p, r = normalized(prior), normalized(ref)
    assert probs == pytest.approx(calibrate(raw, {k: p[k] / r[k] for k in p}), abs=1e-4)
    assert sum(probs.values()) == pytest.approx(1, abs=1e-4)
    if which == "closed_book":                # its conversation is the reference: the raw probabilities decide
        assert prior == ref and s.decision == pick(raw)
    assert s.decision == pick(probs) and s.answer.startswith(f"Answer: {s.decision}")
    assert cal["time_s"] >= 0 and (cal["cached"] or (cal["time_s"] > 0 and cal["prompt_tokens"] > 0))


def test_the_content_free_pass_keeps_the_conversations_cache(polar_runs):
    """The synthesis call after the content-free pass evaluates only what follows the last claims call's prompt
    (those claims, tokenized anew from their text, and the new turn), not the whole conversation."""
    t = polar_runs[1]
    calls = t["traces"]["calls"]
    synth, claims = calls[-1], [c for c in calls if c["kind"] == "claims"][-1]
    assert synth["kind"] == "synthesis"
    assert synth["prompt_tokens_evaluated"] <= synth["prompt_tokens"] - claims["prompt_tokens"] + 2


def test_the_content_free_pass_leaves_what_the_answer_reads_unchanged(polar_runs):
    """Setting the conversation's cache aside and putting it back changes nothing the answer's first token sees:
    its raw probabilities are those of the same run without calibration (no content-free pass at all)."""
    q, corpus = polar_runs[3]
    plain = engine.research(q, profile="quick", corpus=corpus, answer_type="polar", decision_calibration="none",
                            timeout_s=0)
    a = plain.telemetry["answer"]
    assert a["decision_method"] == "token_probabilities" and a["decision_calibration"] is None
    assert a["decision_probabilities"] == polar_runs[1]["answer"]["decision_calibration"]["raw_probabilities"]
