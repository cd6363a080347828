"""The gate's power (analysis/stats.py): what a gated comparison could have caught, simulated with the gate's own
test on the runs' own spread. Synthetic runs, seeded."""
from __future__ import annotations

import numpy as np

from llm_research_bench.harness.analysis import stats
from llm_research_bench.harness.analysis.compare import add_power, compare_records
from llm_research_bench.harness.analysis.names import parse_threshold
from llm_research_bench.harness.report.comparison import power_note
from tests.harness.analysis.test_compare import _rec


def runs(rng, n, sigma, level=6.0, factor=1.0):
    return list(level * factor * np.exp(rng.normal(0.0, sigma, n)))


def test_no_change_is_caught_about_alpha_of_the_time_and_a_large_one_always():
    res = np.random.default_rng(1).normal(0.0, 0.05, 400)
    assert stats.catch_rate(res, 5, 5, 0.0, 5.0) <= 0.05            # the threshold only removes failures
    assert stats.catch_rate(res, 5, 5, 60.0, 5.0) == 1.0
    assert stats.catch_rate(res, 10, 10, 10.0, 5.0) > stats.catch_rate(res, 5, 5, 10.0, 5.0)


def test_a_quiet_series_detects_small_changes_and_a_noisy_one_needs_more_rounds():
    rng = np.random.default_rng(2)
    quiet = stats.gate_power(runs(rng, 8, 0.01), runs(rng, 8, 0.01), 5.0)
    noisy = stats.gate_power(runs(rng, 8, 0.08), runs(rng, 8, 0.08), 5.0)
    assert quiet.detectable_pct is not None and quiet.detectable_pct <= 10 and quiet.rounds_needed <= 5
    assert noisy.spread_pct > 4 * quiet.spread_pct
    assert noisy.rounds_needed is not None and noisy.rounds_needed > quiet.rounds_needed
    assert noisy.detectable_pct is not None and noisy.detectable_pct > quiet.detectable_pct
    assert (quiet.n_base, quiet.n_cur, quiet.residuals, quiet.target_pct) == (8, 8, 16, 10.0)


def test_too_few_runs_give_no_estimate_and_the_same_runs_the_same_answer():
    rng = np.random.default_rng(3)
    assert stats.gate_power([6.0], runs(rng, 5, 0.05), 5.0) is None
    a, b = runs(rng, 5, 0.05), runs(rng, 5, 0.05)
    assert stats.gate_power(a, b, 5.0) == stats.gate_power(a, b, 5.0)


def test_a_passing_gated_metric_says_what_it_could_have_caught():
    rng = np.random.default_rng(4)
    base, cur = ([_rec(c, t) for t in runs(rng, 5, 0.07)] for c in "ab")
    comp = compare_records(base, cur, thresholds=[parse_threshold("execution_time_s:5%")])
    d = comp.series[0].delta("execution_time_s")
    assert not d.failed and d.power is None                       # a separate step, for a comparison shown
    assert add_power(comp) is comp and d.power is not None
    note = power_note(d)
    assert note.startswith("gate power: with these 5 v 5 runs (spread ") and "twice the 5 % threshold" in note
    assert "a rough estimate, from few runs" in note
    ungated = add_power(compare_records(base, cur)).series[0].delta("execution_time_s")
    assert ungated.power is None and power_note(ungated) == ""
