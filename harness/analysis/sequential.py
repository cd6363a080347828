"""Sequential comparisons (pure): a look after every R rounds a side, more rounds only while a gated metric is
undecided (worse, yet not failed). Each look tests at alpha / looks (Bonferroni), so that all the looks together
fail an A/A comparison at most alpha of the time."""
from __future__ import annotations

import math

import numpy as np

from .compare import Comparison, MetricDelta
from .stats import ALPHA, WORSE, beyond, can_decide, change_estimates, gate_batch

#: A gated metric worse by more than this share of its threshold, but not failed, is undecided (0: worse at all).
FUTILITY = 0.0


def plan(rounds: int, max_rounds: int) -> list[int]:
    """The rounds a side measured at each look: rounds, 2 x rounds, ... capped at max_rounds (at least one look)."""
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    n = max(1, math.ceil(max_rounds / rounds))
    return [min(rounds * (k + 1), max(max_rounds, rounds)) for k in range(n)]


def look_alpha(looks: int, alpha: float = ALPHA) -> float:
    return alpha / max(1, looks)


def worse_undecided(change_pct, threshold_pct: float, worse: str = "greater"):
    """Whether a change not failed asks for another look: worse by more than FUTILITY x the threshold."""
    return beyond(change_pct, FUTILITY * threshold_pct, worse)


def undecided(comp: Comparison) -> list[tuple[str, MetricDelta]]:
    """(series key, delta) of every gated metric not failed but undecided."""
    return [(s.key, d) for s in comp.series for d in s.deltas if d.threshold is not None and not d.failed
            and d.better in WORSE and worse_undecided(d.gate_change_pct, d.threshold.pct, WORSE[d.better])]


def should_continue(comp: Comparison, look: int, looks: int) -> bool:
    """Measure another look: none has failed, some gated metric is undecided, and a look is left."""
    return look + 1 < looks and not comp.failed and bool(undecided(comp))


def gate_looks(base: np.ndarray, cur: np.ndarray, threshold_pct: float, *, rounds: int, max_rounds: int,
               alpha: float = ALPHA, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The looks of the gate on a batch of pairs of a lower-is-better metric, base and cur (m, >= max_rounds) in
    round order -> (failed (m,), rounds a side used (m,)): what test_false_alarms checks by Monte Carlo."""
    base, cur = np.atleast_2d(np.asarray(base, dtype=float)), np.atleast_2d(np.asarray(cur, dtype=float))
    looks = plan(rounds, max_rounds)
    a = look_alpha(len(looks), alpha)
    failed, used, going = np.zeros(len(base), bool), np.zeros(len(base), int), np.ones(len(base), bool)
    for k, n in enumerate(looks):
        idx = np.flatnonzero(going)
        if not idx.size:
            break
        b, c = base[idx, :n], cur[idx, :n]
        if can_decide(n, n, a):
            failed[idx], moved = gate_batch(b, c, threshold_pct, alpha=a, seed=seed)
        else:                                     # no outcome at these n reaches alpha: no failure
            moved = change_estimates(b, c)
        used[idx] = n
        going[idx] = ~failed[idx] & worse_undecided(moved, threshold_pct) & (k + 1 < len(looks))
    return failed, used
