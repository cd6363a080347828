"""Early exit on information gain (engine.novelty): marginal novelty, relevance weights, the gate's decisions."""
import numpy as np
import pytest

from llm_research_bench.engine.novelty import (EarlyExitController, marginal_novelties, passage_novelties,
                                               relevance_floor, relevance_weights)


def unit(*rows):
    a = np.asarray(rows, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_marginal_novelty_counts_earlier_passages_of_the_same_batch():
    e = np.eye(3, dtype=np.float32)
    batch = np.vstack([e[0], e[0], e[1]])
    assert list(marginal_novelties(batch, None)) == pytest.approx([1.0, 0.0, 1.0])
    assert list(passage_novelties(batch, None)) == pytest.approx([1.0, 1.0, 1.0])    # the seed's: context only
    assert list(marginal_novelties(e[2:3], e[:2])) == pytest.approx([1.0])
    assert list(marginal_novelties(e[:1], e[:2])) == pytest.approx([0.0])
    assert marginal_novelties(np.zeros((0, 3)), None).size == 0


def test_relevance_weights_are_relevance_above_the_floor():
    q = np.array([1.0, 0.0], dtype=np.float32)
    v = unit([1, 0], [1, 1], [0, 1])
    w = relevance_weights(q, v, floor=0.2)
    assert list(w) == pytest.approx([0.8, 1 / np.sqrt(2) - 0.2, 0.0])
    assert relevance_floor(q, v) == pytest.approx((1 + 1 / np.sqrt(2) + 0) / 3)    # q . centroid


def test_first_batch_sets_the_reference_and_later_batches_are_relative_to_it():
    q = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    g = EarlyExitController(threshold=0.5, query=q, floor=0.0)
    ok, n0 = g.admit(0, unit([1, 0.1, 0], [1, 0, 0.1]))
    assert ok and n0 == 1.0 and g.decisions[0].reason == "first_batch"
    # far down the ranking: barely relevant, though new -> low gain, stops
    ok, n1 = g.admit(1, unit([0.2, 1, 0], [0.2, 0, 1]))
    assert not ok and n1 < 0.5 and g.stopped_at == 1
    d = g.decisions[1]
    assert d.reason == "below_threshold" and not d.admitted and d.threshold == 0.5
    assert d.passage_novelty > 0.5            # the seed's measure would have called it novel
    assert g.trace == [1.0, pytest.approx(n1, abs=1e-4)]


def test_a_relevant_new_batch_scores_above_a_repeat():
    q = unit([1, 1, 0])[0]

    def second(batch):
        g = EarlyExitController(threshold=0.5, query=q, floor=0.0)
        g.admit(0, unit([1, 0.9, 0]))
        return g.admit(1, batch)[1]

    new, repeat = second(unit([0.2, 1, 0.6])), second(unit([1, 0.9, 0]))
    assert repeat == pytest.approx(0.0, abs=1e-6) and new > 0.05


def test_disabled_gate_admits_everything_and_still_traces_the_decision():
    q = np.array([1.0, 0.0], dtype=np.float32)
    g = EarlyExitController(threshold=0.9, enabled=False, query=q, floor=0.0)
    g.admit(0, unit([1, 0]))
    ok, n = g.admit(1, unit([1, 0]))
    assert ok and n == pytest.approx(0.0) and g.stopped_at is None
    assert g.decisions[1].reason == "gate_disabled" and g.decisions[1].admitted


def test_no_relevant_first_batch_never_stops():
    q = np.array([1.0, 0.0], dtype=np.float32)
    g = EarlyExitController(threshold=0.9, query=q, floor=0.99)
    g.admit(0, unit([0, 1]))
    ok, n = g.admit(1, unit([0, 1]))
    assert ok and n == 1.0 and g.decisions[1].reason == "no_relevant_first_batch"


def test_forget_last_keeps_only_the_passages_that_fitted():
    q = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    e = np.eye(3, dtype=np.float32)
    g = EarlyExitController(threshold=0.0, query=q, floor=-1.0)
    g.admit(0, np.vstack([e[0], e[1]]))
    g.forget_last(1)                                      # e[1] did not fit the context
    _, _ = g.admit(1, e[1:2])
    assert g.decisions[1].passage_novelty == pytest.approx(1.0)   # e[1] is new: it never reached the context
