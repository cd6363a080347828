"""The first evidence batch's prompt-token budget: the last passage keeps the leading sentences that fit, the rest
waits for the next batch or the answer's prompt (unit, with a word-counting test double for the tokenizer); and
on the real embedded model, the first call's prompt stays within the quick profile's budget."""
from types import SimpleNamespace

import pytest

from llm_research_bench import engine
from llm_research_bench.engine import prompts
from llm_research_bench.engine.backends import make_backend
from llm_research_bench.engine.corpus import Passage
from llm_research_bench.engine.pipeline import _fit_first_batch
from llm_research_bench.engine.profiles import get_profile
from llm_research_bench.engine.telemetry import validation_errors

TEXT = "Alpha beta gamma delta. Epsilon zeta eta theta iota. Kappa lambda mu nu xi omicron."


class WordCountingBackendDouble:
    """Counts a prompt's tokens as its words (only what _fit_first_batch asks of a backend)."""

    def prompt_tokens(self, messages, prefill=""):
        return sum(len(m.content.split()) for m in messages) + len(prefill.split())


def _run_double(budget: int):
    return SimpleNamespace(backend=WordCountingBackendDouble(), question="Why?", rest=[],
                           profile=get_profile("quick").with_overrides(first_batch_tokens=budget))


def _conversation(labels):
    """The first batch's conversation for `labels`, two claims wanted, as the pipeline builds it."""
    return [engine.backends.Message("user", prompts.first_batch("Why?", labels, 2, "extractive"))]


def _whole(text: str):
    """(labels, wanted, the first batch's conversation) for one passage of `text`."""
    labels = [(1, Passage("p", text))]
    return labels, 2, _conversation(labels)


def _words(labels):
    return WordCountingBackendDouble().prompt_tokens(_conversation(labels), prompts.CLAIM_PREFILL)


def test_the_last_passage_keeps_the_leading_sentences_that_fit():
    sents = TEXT.split(". ")
    two = [(1, Passage("p", sents[0] + ". " + sents[1] + "."))]
    run = _run_double(_words(two))
    shown, trial = _fit_first_batch(run, *_whole(TEXT))
    assert shown[0][1].text == two[0][1].text and shown[0][1].id == "p"
    assert [(n, p.id, p.text) for n, p in run.rest] == [(1, "p", "Kappa lambda mu nu xi omicron.")]
    assert run.backend.prompt_tokens(trial, prompts.CLAIM_PREFILL) <= run.profile.first_batch_tokens


def test_one_sentence_is_kept_however_small_the_budget_and_nothing_is_cut_that_fits():
    run = _run_double(1)
    shown, _ = _fit_first_batch(run, *_whole(TEXT))
    assert shown[0][1].text == "Alpha beta gamma delta." and len(run.rest) == 1
    run = _run_double(10_000)
    whole = _whole("Alpha beta.  Gamma delta.")           # kept as written, two spaces and all
    assert _fit_first_batch(run, *whole) == (whole[0], whole[2]) and run.rest == []
    run = _run_double(1)
    one = _whole("A single long sentence with no end")
    assert _fit_first_batch(run, *one) == (one[0], one[2]) and run.rest == []


def test_the_rest_is_put_before_the_answer_request():
    assert prompts.rest_of([]) == ""
    assert prompts.rest_of([(1, Passage("p", "More."))]) == "The rest of passage [1]: More.\n\n"


@pytest.mark.e2e
def test_the_first_call_stays_within_the_budget_and_the_rest_is_shown():
    prof = get_profile("quick")
    backend = make_backend("llamacpp", "smollm2-135m", context_window=prof.context_window)
    backend.prompt_log = []
    try:
        s = engine.research("Do mitochondria play a role in remodelling lace plant leaves during programmed cell "
                            "death?", profile=prof, backend=backend, timeout_s=0)
        t = s.telemetry
        assert validation_errors(t) == [] and t["profile"]["first_batch_tokens"] == 160
        assert len(backend.prompt_log[0]) <= 160
        first, later = t["traces"]["batches"][0], t["traces"]["batches"][1:]
        cut = first["cut"]
        assert cut == first["passage_ids"][-1:]
        carried = [b for b in later if b.get("rest_of") == cut]
        answer_prompt = backend.llm.detokenize(backend.prompt_log[-1]).decode()
        assert (len(carried) == 1) != ("The rest of passage [1]:" in answer_prompt)    # shown exactly once
    finally:
        backend.close()
