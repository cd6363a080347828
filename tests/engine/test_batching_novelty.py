import numpy as np
import pytest

from llm_research_bench.engine.batching import AdaptiveBatchSizer, Pressure, adaptive_batch_effectiveness
from llm_research_bench.engine.novelty import EarlyExitController, novelty


def test_pressure_is_the_larger_reading():
    assert Pressure(0.3, 0.9).value == 0.9
    assert Pressure(0.95, 0.1).value == 0.95


def test_sizer_shrinks_grows_and_respects_bounds():
    s = AdaptiveBatchSizer(8, 4, 10)
    assert s.next_size(0, Pressure(0.9, 0.1)) == 6        # > 0.85: -2
    assert s.next_size(1, Pressure(0.1, 0.86)) == 4
    assert s.next_size(2, Pressure(0.1, 0.99)) == 4       # not below minimum
    assert s.next_size(3, Pressure(0.2, 0.3)) == 5        # < 0.5: +1
    assert s.next_size(4, Pressure(0.6, 0.1)) == 5        # in band: hold
    for i in range(10):
        s.next_size(5 + i, Pressure(0.1, 0.1))
    assert s.size == 10                                   # not above maximum
    kinds = [d.decision for d in s.decisions[:5]]
    assert kinds == ["shrink", "shrink", "hold", "grow", "hold"]
    assert s.decisions[0].old == 8 and s.decisions[0].new == 6 and s.decisions[0].pressure == 0.9


def test_sizer_boundaries_are_strict():
    s = AdaptiveBatchSizer(8, 2, 12)
    assert s.next_size(0, Pressure(0.85, 0.0)) == 8       # exactly 0.85 is not "> 0.85"
    assert s.next_size(1, Pressure(0.5, 0.0)) == 8        # exactly 0.5 is not "< 0.5"


def test_sizer_rejects_bad_bounds():
    with pytest.raises(ValueError):
        AdaptiveBatchSizer(1, 2, 3)


def test_batch_effectiveness():
    s = AdaptiveBatchSizer(8, 2, 12)
    for p in (0.9, 0.7, 0.95, 0.9, 0.3):
        s.next_size(0, Pressure(p, 0))
    assert adaptive_batch_effectiveness(s.decisions) == pytest.approx(2 / 3)
    s2 = AdaptiveBatchSizer(8, 2, 12)
    s2.next_size(0, Pressure(0.1, 0))
    assert adaptive_batch_effectiveness(s2.decisions) is None


def test_novelty_math():
    e = np.eye(3, dtype=np.float32)
    assert novelty(e[:1], None) == 1.0
    assert novelty(e[:1], e[:1]) == pytest.approx(0.0)
    assert novelty(e[1:2], e[:1]) == pytest.approx(1.0)
    # mean over the batch of each passage's best similarity: (1 + 0) / 2 -> novelty 0.5
    assert novelty(e[:2], e[:1]) == pytest.approx(0.5)
    v = np.array([[1.0, 1.0, 0.0]])
    assert novelty(v, e[:1]) == pytest.approx(1 - 1 / np.sqrt(2), abs=1e-6)
    assert novelty(np.zeros((0, 3)), e) == 0.0


def test_early_exit_stops_below_threshold_and_traces():
    e = np.eye(4, dtype=np.float32)
    g = EarlyExitController(threshold=0.15)
    assert g.admit(0, e[:2])[0]
    assert g.admit(1, e[2:3])[0]                              # orthogonal: novelty 1
    ok, n = g.admit(2, e[:1] * 0.99 + e[3:4] * 0.01)         # nearly a repeat
    assert not ok and n < 0.15 and g.stopped_at == 2
    assert g.trace[:2] == [1.0, 1.0] and len(g.trace) == 3


def test_early_exit_disabled_admits_everything_but_still_traces():
    e = np.eye(2, dtype=np.float32)
    g = EarlyExitController(threshold=0.15, enabled=False)
    g.admit(0, e[:1])
    ok, n = g.admit(1, e[:1])
    assert ok and n == pytest.approx(0.0) and g.stopped_at is None
