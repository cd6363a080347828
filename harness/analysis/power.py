"""What a gated comparison could have caught (pure): the gate (stats.gate_batch) simulated on runs resampled from
the comparison's own spread: the smallest change caught POWER of the time with the runs measured, and the rounds a
side that catch twice the threshold (the change not to miss) that often."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Sequence

import numpy as np

from ..records import is_number
from .stats import gate_batch, history_residuals

#: Simulated comparisons per point; how often the gate must catch a change; fewer residuals: no estimate.
DRAWS, POWER, MIN_RESIDUALS = 1000, 0.9, 6
#: Changes tried for `detectable_pct` (multiples of the threshold); rounds a side tried for `rounds_needed`.
MULTIPLES = (1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 8.0)
ROUNDS = (3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40)


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
               worse: str = "greater", seed: int = 0) -> float:
    """The share of DRAWS simulated comparisons (n1 v n2 runs from `residuals`, cur shifted toward worse) failed."""
    rng = np.random.default_rng(seed)
    shift = math.log1p(change_pct / 100.0) * (1 if worse == "greater" else -1)
    base = np.exp(residuals[rng.integers(0, residuals.size, (DRAWS, n1))])
    cur = np.exp(residuals[rng.integers(0, residuals.size, (DRAWS, n2))] + shift)
    return float(gate_batch(base, cur, threshold_pct, worse=worse, seed=seed)[0].mean())


def gate_power(base: Sequence[float], cur: Sequence[float], threshold_pct: float, *, worse: str = "greater",
               history: Sequence[Sequence[float]] = (), seed: int = 0) -> GatePower | None:
    """The gate's power for one metric (positive values), or None without enough runs to estimate the spread."""
    b, c = ([float(x) for x in xs if is_number(x) and x > 0] for xs in (base, cur))
    if len(b) < 2 or len(c) < 2 or threshold_pct <= 0:
        return None
    res, _ = history_residuals([b, c, *history])
    if res.size < MIN_RESIDUALS:
        return None
    rate = partial(catch_rate, res, threshold_pct=threshold_pct, worse=worse, seed=seed)
    target = 2.0 * threshold_pct
    detectable = next((threshold_pct * m for m in MULTIPLES if rate(len(b), len(c), threshold_pct * m) >= POWER), None)
    needed = next((n for n in ROUNDS if rate(n, n, target) >= POWER), None)
    return GatePower(round(float(np.std(res, ddof=1)) * 100.0, 2), len(b), len(c), int(res.size), detectable, needed,
                     target)
