"""Sequential comparisons (analysis/compare.py): a look every `rounds` rounds a side, more rounds only while a
gated metric is undecided, each look at alpha / looks; and the one gate function they share with compare."""
from __future__ import annotations

import numpy as np
import pytest

from llm_research_bench.harness.analysis import compare
from llm_research_bench.harness.analysis.calibration import sequential_comparisons
from llm_research_bench.harness.analysis.compare import compare_records
from llm_research_bench.harness.analysis.stats import ALPHA, gate_decision
from llm_research_bench.harness.analysis.names import parse_threshold
from tests.harness.analysis.test_compare import _rec

TH = [parse_threshold("execution_time_s:5%")]


def test_the_plan_and_the_alpha_of_each_look():
    assert compare.plan(5, 15) == [5, 10, 15] and compare.plan(5, 12) == [5, 10, 12]
    assert compare.plan(5, 5) == [5] and compare.plan(5, 3) == [5]
    assert compare.look_alpha(3) == pytest.approx(ALPHA / 3) and compare.look_alpha(1) == ALPHA
    with pytest.raises(ValueError):
        compare.plan(0, 5)


def test_the_gate_fails_a_significant_change_toward_worse_beyond_the_threshold():
    assert gate_decision(6.0, True, 5.0) and not gate_decision(5.0, True, 5.0)         # beyond, not at
    assert not gate_decision(6.0, False, 5.0) and not gate_decision(6.0, None, 5.0)    # noise or no test
    assert not gate_decision(-6.0, True, 5.0) and gate_decision(-6.0, True, 5.0, "less")
    assert not gate_decision(None, True, 5.0) and not gate_decision(float("nan"), True, 5.0)
    got = gate_decision(np.array([10.0, 10.0, 2.0, np.nan]), np.array([0.01, 0.2, 0.01, 0.01]) <= ALPHA, 5.0)
    assert got.tolist() == [True, False, False, False]


def _comp(base, cur, alpha=ALPHA):
    return compare_records([_rec("a", t) for t in base], [_rec("b", t) for t in cur], thresholds=TH, alpha=alpha)


def test_only_a_worse_change_that_is_not_decided_asks_for_more_rounds():
    base = [10.0, 10.9, 9.6, 10.4, 9.9]
    unclear = _comp(base, [10.4, 9.9, 11.0, 10.3, 10.6])           # +4 %: within the threshold, beyond half
    assert not unclear.failed and compare.undecided(unclear) and compare.should_continue(unclear, 0, 3)
    assert not compare.should_continue(unclear, 2, 3)                    # no look left
    clear = _comp(base, [13.0, 13.2, 12.9, 13.1, 13.3])
    assert clear.failed and not compare.should_continue(clear, 0, 3)
    same = _comp(base, [10.0, 10.1, 9.8, 10.3, 9.9])                # the same median: nothing to wait for
    faster = _comp(base, [8.0, 8.2, 7.9, 8.1, 8.3])
    assert not compare.undecided(same) and not compare.undecided(faster)


def test_calibration_judges_slots_sequentially():
    slow = [_rec("b", 11.0 + 0.01 * (i % 3), ts=f"2026-01-01T00:00:{i:02d}") for i in range(30)]
    a = [_rec("a", 10.0 + 0.01 * (i % 3), ts=f"2026-01-01T00:00:{i:02d}") for i in range(30)]
    for k, r in enumerate([*a, *slow]):
        r.round = k % 30
    out = sequential_comparisons(a, slow, rounds=5, max_rounds=15, thresholds=TH)
    assert len(out) == 2 and all(b.failed and b.n_base == 5 for b in out)      # +10 %, caught at the first look
