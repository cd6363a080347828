"""What a gated comparison could have caught (pure): the gate's power, from the runs' own spread.

A gate that passes says little unless it says what it would have caught. For a metric under a
`--research-compare-fail` threshold, `gate_power` simulates the gate itself -- the one-sided permutation test toward
the worse direction (analysis/stats.py) and the threshold on the test's estimate of the change -- on runs resampled from
this comparison's own run-to-run spread (each run's log deviation from the median of its side's other runs,
leave-one-out as in the history method; plus the series' history residuals where compare has them), and answers:
- the smallest change it catches 9 times in 10 with the sample sizes measured (`detectable_pct`, from a grid of
  multiples of the threshold; None when not even the largest);
- how many rounds a side catch a change of twice the threshold 9 times in 10 (`rounds_needed`; a threshold sits
  at the edge of what is tolerated, a change twice as large is the one not to miss).

On this machine's quick runs (spread 9-15 % in the continuous demos) it said: 5 v 5 runs catch +20 % nine times in
ten, +10 % needs 20-30+ rounds a side; the gate calibration bench measured +10 % caught in 13 of 20 comparisons
at 5 rounds a side. Seeded, so the same runs give the same answer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .stats import ALPHA, change_estimates, history_residuals, permutation_p

#: Simulated comparisons per point.
DRAWS = 1000
#: The gate must catch a change this often.
POWER = 0.9
#: Changes tried for `detectable_pct`, as multiples of the threshold.
MULTIPLES = (1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 8.0)
#: Rounds a side tried for `rounds_needed`.
ROUNDS = (3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40)
#: Fewer residuals than this: no estimate (the spread itself would be a guess).
MIN_RESIDUALS = 6


@dataclass
class GatePower:
    spread_pct: float                # run-to-run spread: SD of the residuals (log scale), in %
    n_base: int
    n_cur: int
    residuals: int                   # how many residuals the spread rests on
    detectable_pct: float | None     # smallest change caught >= POWER at n_base v n_cur (None: none tried)
    rounds_needed: int | None        # rounds a side to catch 2 x threshold >= POWER (None: more than ROUNDS[-1])
    target_pct: float                # 2 x threshold: the change rounds_needed is for


def catch_rate(residuals: np.ndarray, n1: int, n2: int, change_pct: float, threshold_pct: float, *,
               worse: str = "greater", draws: int = DRAWS, seed: int = 0, alpha: float = ALPHA) -> float:
    """The share of simulated comparisons (n1 base runs v n2 current runs, drawn from `residuals` on the log scale,
    the current side shifted by change_pct toward `worse`) that the gate fails."""
    rng = np.random.default_rng(seed)
    shift = math.log1p(change_pct / 100.0) * (1 if worse == "greater" else -1)
    base = np.exp(residuals[rng.integers(0, residuals.size, (draws, n1))])
    cur = np.exp(residuals[rng.integers(0, residuals.size, (draws, n2))] + shift)
    p = permutation_p(base, cur, seed=seed, alternative=worse)
    moved = change_estimates(base, cur)
    beyond = moved > threshold_pct if worse == "greater" else -moved > threshold_pct
    return float(((p <= alpha) & beyond).mean())


def gate_power(base: Sequence[float], cur: Sequence[float], threshold_pct: float, *, worse: str = "greater",
               history: Sequence[Sequence[float]] = (), seed: int = 0, alpha: float = ALPHA) -> GatePower | None:
    """The gate's power for one metric (positive values), or None without enough runs to estimate the spread."""
    b = [float(x) for x in base if isinstance(x, (int, float)) and math.isfinite(x) and x > 0]
    c = [float(x) for x in cur if isinstance(x, (int, float)) and math.isfinite(x) and x > 0]
    if len(b) < 2 or len(c) < 2 or threshold_pct <= 0:
        return None
    res, _ = history_residuals([b, c, *history])
    if res.size < MIN_RESIDUALS:
        return None
    spread = float(np.std(res, ddof=1))

    def rate(n1: int, n2: int, change: float) -> float:
        return catch_rate(res, n1, n2, change, threshold_pct, worse=worse, seed=seed, alpha=alpha)

    detectable = next((threshold_pct * m for m in MULTIPLES if rate(len(b), len(c), threshold_pct * m) >= POWER),
                      None)
    target = 2.0 * threshold_pct
    needed = next((n for n in ROUNDS if rate(n, n, target) >= POWER), None)
    return GatePower(round(spread * 100.0, 2), len(b), len(c), int(res.size), detectable, needed, target)
