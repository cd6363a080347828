"""The noise tests and the gate hold their false-alarm rate (analysis/stats.py, analysis/compare.py): Monte Carlo
over thousands of A/A pairs, for every sample size at which a test may call a change significant, with pairs drawn
from real quick-run timings of the CI machine (tests/data/quick_timings.json, resampled) and from a model with
occasional 2x spikes. Seeded and vectorised: it runs the production functions on batches of pairs.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llm_research_bench.harness.analysis import compare, stats

DATA = Path(__file__).resolve().parents[2] / "data" / "quick_timings.json"
PAIRS = 4000
ALPHA = stats.ALPHA
#: Monte-Carlo error: a rate measured over PAIRS pairs has a standard error of sqrt(alpha (1 - alpha) / PAIRS). One
#: size may exceed alpha by 3 standard errors; the mean over all sizes, a far more precise figure, by 1 SE.
SE = (ALPHA * (1 - ALPHA) / PAIRS) ** 0.5
TOLERANCE = 3 * SE
#: Sample sizes (base, current) at which the permutation test may fail (n1 <= n2: the test is symmetric).
PERMUTATION_SIZES = [(n1, n2) for n1 in range(2, 9) for n2 in range(n1, 9) if stats.can_decide(n1, n2)] + [(10, 10)]
#: Where the permutation test cannot decide but history may: 3 v 3.
HISTORY_SIZES = [(n1, n2) for n1 in range(2, 9) for n2 in range(n1, 9)
                 if not stats.can_decide(n1, n2) and min(n1, n2) >= stats.HISTORY_MIN_RUNS]


def real_times() -> np.ndarray:
    return np.asarray([r["execution_time_s"] for r in json.loads(DATA.read_text())["runs"]], dtype=float)


def spiky(rng: np.random.Generator, shape, p: float, sigma: float = 0.02, level: float = 16.5) -> np.ndarray:
    x = level * np.exp(rng.normal(0.0, sigma, shape))
    return x * np.where(rng.random(shape) < p, 2.0, 1.0)


MODELS = {
    "real": lambda rng, shape: rng.choice(real_times(), size=shape, replace=True),
    "spikes 5%": lambda rng, shape: spiky(rng, shape, 0.05),
    "spikes 10%": lambda rng, shape: spiky(rng, shape, 0.10),
}


def test_the_real_data_is_real_and_large_enough():
    doc = json.loads(DATA.read_text())
    assert len(doc["runs"]) >= 20 and doc["machine"] and doc["how"]
    assert all(r["execution_time_s"] > 0 for r in doc["runs"])


def test_the_sizes_the_permutation_test_may_fail_at():
    assert (3, 3) not in PERMUTATION_SIZES and (2, 4) not in PERMUTATION_SIZES
    assert {(4, 4), (3, 4), (2, 5), (5, 5)} <= set(PERMUTATION_SIZES)
    assert HISTORY_SIZES == [(3, 3)]


#: The two-sided p (tables, chart marks) and the gate's one-sided p toward "worse" (larger values: a slowdown).
SIDES = ["two-sided", "greater"]


@pytest.mark.parametrize("alternative", SIDES)
@pytest.mark.parametrize("model", list(MODELS))
def test_permutation_false_alarms_stay_within_alpha_at_every_size(model, alternative):
    rng = np.random.default_rng(20261128)
    rates = {}
    for n1, n2 in PERMUTATION_SIZES:
        a, b = MODELS[model](rng, (PAIRS, n1)), MODELS[model](rng, (PAIRS, n2))
        p = stats.permutation_p(a, b, seed=n1 * 100 + n2, alternative=alternative)
        rates[(n1, n2)] = float((p <= ALPHA).mean())
    worst = max(rates, key=rates.get)
    assert rates[worst] <= ALPHA + TOLERANCE, f"{model}: {rates}"
    mean = sum(rates.values()) / len(rates)
    assert mean <= ALPHA + SE, f"{model}: mean {mean:.4f} over {len(rates)} sizes: {rates}"
    print(f"{model}, {alternative}: false-alarm rate at alpha {ALPHA}: mean {mean:.4f}, worst {rates[worst]:.4f} "
          f"at {worst[0]} v {worst[1]} ({PAIRS} A/A pairs per size, {len(rates)} sizes)")


@pytest.mark.parametrize("alternative", SIDES)
@pytest.mark.parametrize("model", list(MODELS))
def test_history_false_alarms_stay_within_alpha(model, alternative):
    """3 v 3 with the noise estimated from the series' history (4 other commits x 3 runs, the same noise)."""
    rng = np.random.default_rng(7)
    groups, per = 400, PAIRS // 400
    for n1, n2 in HISTORY_SIZES:
        hits = 0
        for g in range(groups):
            hist = [MODELS[model](rng, (3,)) for _ in range(4)]
            res, commits = stats.history_residuals(hist)
            a, b = MODELS[model](rng, (per, n1)), MODELS[model](rng, (per, n2))
            hits += int((stats.history_p(a, b, res, seed=g, alternative=alternative) <= ALPHA).sum())
        assert hits / PAIRS <= ALPHA + TOLERANCE, f"{model} {n1} v {n2}: {hits / PAIRS:.3f}"
        print(f"{model}, {alternative}: history method {n1} v {n2}: false-alarm rate {hits / PAIRS:.4f} "
              f"({PAIRS} A/A pairs)")


def test_the_gate_fails_a_slowdown_only_one_sided_and_never_an_improvement():
    """What compare's gate uses: the one-sided p toward the worse direction; an improvement never reaches it."""
    rng = np.random.default_rng(11)
    a = spiky(rng, (1, 5), 0.0, sigma=0.02)[0]
    slower, faster = list(a * 1.3), list(a / 1.3)
    t = stats.noise_test(list(a), slower, worse="greater")
    assert t.worse_significant and t.p_worse == pytest.approx(t.p_value / 2) and t.p_worse == pytest.approx(1 / 252)
    t = stats.noise_test(list(a), faster, worse="greater")
    assert t.significant and not t.worse_significant and t.p_worse == 1.0
    assert stats.noise_test(list(a), faster, worse="less").worse_significant      # higher is better: a drop is worse


@pytest.mark.parametrize("n", [5, 6, 8])
def test_one_spike_per_side_does_not_hide_a_15_percent_change(n):
    rng = np.random.default_rng(n)
    a = spiky(rng, (PAIRS, n), 0.0, sigma=0.02)
    b = spiky(rng, (PAIRS, n), 0.0, sigma=0.02) * 1.15
    a[:, rng.integers(0, n)] *= 2.0
    b[:, rng.integers(0, n)] *= 2.0
    detected = float((stats.permutation_p(a, b, seed=n, alternative="greater") <= ALPHA).mean())
    print(f"{n} v {n}, one 2x spike a side, +15 %: detected in {detected:.4f} of {PAIRS} pairs")
    assert detected >= 0.95, detected


@pytest.mark.parametrize("model", list(MODELS))
def test_the_sequential_gate_keeps_alpha_over_all_its_looks(model):
    """`continuous --research-rounds 5 --research-max-rounds 15 --research-compare-fail execution_time_s:5%`: looks
    at 5, 10 and 15 rounds a side, each at alpha / 3 (Bonferroni), more rounds only while undecided. The share
    of A/A comparisons failed at any look stays within alpha (+ 3 SE)."""
    rng = np.random.default_rng(15)
    a, b = MODELS[model](rng, (PAIRS, 15)), MODELS[model](rng, (PAIRS, 15))
    failed, used = compare.gate_looks(a, b, 5.0, rounds=5, max_rounds=15)
    rate = float(failed.mean())
    print(f"{model}: sequential 5-15 gate, A/A failed {rate:.4f} of {PAIRS} (mean {used.mean():.1f} rounds a side)")
    assert rate <= ALPHA + TOLERANCE, rate


def test_the_sequential_gate_catches_more_than_five_fixed_rounds():
    """A +10 % slowdown under 7 % log-normal noise."""
    rng = np.random.default_rng(16)
    a = spiky(rng, (PAIRS, 15), 0.0, sigma=0.07)
    b = spiky(rng, (PAIRS, 15), 0.0, sigma=0.07) * 1.10
    fixed5, _ = compare.gate_looks(a, b, 5.0, rounds=5, max_rounds=5)
    seq, used = compare.gate_looks(a, b, 5.0, rounds=5, max_rounds=15)
    print(f"+10 % at 7 % noise: 5 fixed rounds catch {fixed5.mean():.3f}; sequential 5-15 {seq.mean():.3f} "
          f"(mean {used.mean():.1f} rounds a side)")
    assert seq.mean() > fixed5.mean() + 0.2


def test_noise_test_uses_the_same_functions():
    """noise_test (what compare and --research-compare-fail call) is the batch function on one pair."""
    rng = np.random.default_rng(3)
    a, b = spiky(rng, (1, 5), 0.1), spiky(rng, (1, 5), 0.1)
    t = stats.noise_test(list(a[0]), list(b[0]))
    assert t.method == "permutation" and t.p_value == pytest.approx(float(stats.permutation_p(a, b)[0]))
