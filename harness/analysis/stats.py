"""Noise tests, the gate and its power (pure): is a change between two sets of runs beyond its threshold and noise?
By what the data allow: exact (a deterministic counter, or no spread), permutation (of the sides' spike-trimmed
means of log values), history (the null drawn from the series' run-to-run deviations on recent commits), else
indicative (never failed on). Each gives a two-sided p and one toward worse, on which `gate_decision` fails."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from functools import partial
from itertools import combinations
from typing import Callable, Hashable, Iterable, Sequence, TypeVar

import numpy as np

from ..records import is_number

ALPHA = 0.05
#: Every split up to this many, else this many random ones (the observed included); draws of the history null.
MAX_SPLITS, HISTORY_DRAWS = 2000, 4000
#: History needs this many leave-one-out deviations from this many commits, and this many runs a side.
HISTORY_MIN_RESIDUALS, HISTORY_MIN_COMMITS, HISTORY_MIN_RUNS = 10, 3, 3
#: A pooled value further than SPIKE_DISTANCE from the pooled median (log scale; times the median's size on the
#: raw scale) is a spike, left out of both means, unless more than SPIKE_SHARE of them are (then it is the change).
SPIKE_DISTANCE, SPIKE_SHARE = 0.4, 0.25
#: What a p-value measures: any change, the current side larger or smaller; a metric's worse one, by x-better.
ALTERNATIVES, WORSE = ("two-sided", "greater", "less"), {"lower": "greater", "higher": "less"}
#: Why a result is indicative: one run on a side; two (a spike or a change?); too little history of the series.
ONE_RUN, TWO_RUNS, NO_HISTORY = "one_run", "two_runs", "no_history"
#: Why a comparison is exact: a deterministic counter (schema x-compare: exact); no spread on either side.
COUNTER, NO_SPREAD = "counter", "no_spread"

T = TypeVar("T")


def group_by(items: Iterable[T], key: Callable[[T], Hashable]) -> dict[Hashable, list[T]]:
    """Items by key, keys in the order they first appear."""
    out: dict[Hashable, list[T]] = {}
    for x in items:
        out.setdefault(key(x), []).append(x)
    return out


@dataclass
class Test:
    method: str                     # exact | permutation | history | indicative | none
    significant: bool | None        # two-sided; None: no statistics (indicative)
    p_value: float | None = None     # two-sided
    n_base: int = 0
    n_cur: int = 0
    history_runs: int = 0            # history: the runs and commits the noise estimate rests on
    history_commits: int = 0
    why: str = ""                    # ONE_RUN, TWO_RUNS, NO_HISTORY (indicative); COUNTER, NO_SPREAD (exact)
    worse: str | None = None         # the worse direction ("greater" or "less"), when the caller named it
    p_worse: float | None = None     # one-sided toward worse
    worse_significant: bool | None = None   # a change for the worse beyond noise
    change_pct: float | None = None  # the change estimate, % (change_estimates): what the gate holds to a threshold


def beyond(change_pct, threshold_pct: float, worse: str = "greater"):
    """Whether a change (%, scalar or array; None or NaN: no) goes toward `worse` by more than threshold_pct."""
    return (1.0 if worse == "greater" else -1.0) * np.asarray(change_pct, dtype=float) > threshold_pct


def gate_decision(change_pct, significant, threshold_pct: float, worse: str = "greater"):
    """The gate's rule: fail a change toward `worse` beyond the threshold that the one-sided test calls significant."""
    return beyond(change_pct, threshold_pct, worse) & np.asarray(significant, dtype=bool)


def gate_batch(base, cur, threshold_pct: float, *, worse: str = "greater", alpha: float = ALPHA,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The permutation gate on a batch, base (m, n1) and cur (m, n2) -> (failed (m,), change estimates % (m,))."""
    moved = change_estimates(base, cur)
    p = permutation_p(base, cur, seed=seed, alternative=worse)
    return gate_decision(moved, p <= alpha, threshold_pct, worse), moved


def clean_mask(z: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Per row of pooled values (on the test's scale): True for the values kept, False for spikes."""
    med = np.median(z, axis=-1, keepdims=True)
    spike = np.abs(z - med) > np.where(pos, SPIKE_DISTANCE, SPIKE_DISTANCE * np.maximum(np.abs(med), 1e-12))
    return ~spike | (spike.sum(axis=-1, keepdims=True) > SPIKE_SHARE * z.shape[-1])


def _pooled(base, cur) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray]:
    """n1, n2, the pooled values on the test's scale (logs for rows all positive), which rows are logs, which kept."""
    base, cur = np.atleast_2d(np.asarray(base, dtype=float)), np.atleast_2d(np.asarray(cur, dtype=float))
    z = np.concatenate([base, cur], axis=1)
    pos = np.all(z > 0, axis=-1, keepdims=True)
    v = np.where(pos, np.log(np.where(z > 0, z, 1.0)), z)
    return base.shape[1], cur.shape[1], v, pos, clean_mask(v, pos)


def _split_stats(v: np.ndarray, keep: np.ndarray, in_base: np.ndarray) -> np.ndarray:
    """Cur's kept values' mean - base's per split: v, keep (m, N); in_base (S, N) -> (m, S); 0 if a side keeps none."""
    w, vw, mb = keep.astype(float), np.where(keep, v, 0.0), in_base.T.astype(float)
    sum_b, cnt_b = vw @ mb, w @ mb
    sum_c, cnt_c = vw.sum(axis=1, keepdims=True) - sum_b, w.sum(axis=1, keepdims=True) - cnt_b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((cnt_b > 0) & (cnt_c > 0), sum_c / cnt_c - sum_b / cnt_b, 0.0)


def _oriented(stat: np.ndarray, alternative: str) -> np.ndarray:
    """The statistic turned so that larger is more extreme under the alternative."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative {alternative!r}: one of {', '.join(ALTERNATIVES)}")
    return np.abs(stat) if alternative == "two-sided" else stat if alternative == "greater" else -stat


def _at_least(x: np.ndarray) -> np.ndarray:
    """x, less a little room for floating-point ties."""
    return x - 1e-9 * np.maximum(1.0, np.abs(x))


def _observed(n1: int, n2: int) -> np.ndarray:
    return np.arange(n1 + n2)[None, :] < n1


def change_estimates(base: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """The change the tests measure, %, per pair of a batch: exp(mean of cur's kept logs - base's) - 1 (for rows not
    all positive: the kept means' difference relative to the base's kept mean). NaN where a side keeps nothing."""
    n1, n2, v, pos, keep = _pooled(base, cur)
    diff = _split_stats(v, keep, _observed(n1, n2))[:, 0]
    kb = keep[:, :n1]
    base_mean = np.where(kb, v[:, :n1], 0.0).sum(axis=1) / np.maximum(kb.sum(axis=1), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(base_mean != 0, diff / np.abs(base_mean), np.nan)
    out = np.where(pos[:, 0], np.expm1(diff), raw) * 100.0
    return np.where(kb.any(axis=1) & keep[:, n1:].any(axis=1), out, np.nan)


def min_p(n1: int, n2: int) -> float:
    """Smallest two-sided p the permutation test can give for these sizes."""
    s = math.comb(n1 + n2, n1)
    return 1.0 / MAX_SPLITS if s > MAX_SPLITS else (2.0 if n1 == n2 else 1.0) / s


def can_decide(n1: int, n2: int, alpha: float = ALPHA) -> bool:
    """Whether the permutation test can reach alpha with these sample sizes."""
    return n1 >= 2 and n2 >= 2 and min_p(n1, n2) <= alpha


def rounds_to_decide(alpha: float = ALPHA) -> int:
    """The fewest runs a side with which the permutation test can reach alpha."""
    return next(n for n in range(2, 100) if can_decide(n, n, alpha))


def splits(n1: int, n2: int, seed: int = 0) -> np.ndarray:
    """(S, n1 + n2), True on the base side: row 0 the observed split, then all others or MAX_SPLITS - 1 random ones."""
    n = n1 + n2
    if math.comb(n, n1) <= MAX_SPLITS:                         # combinations start with (0..n1-1)
        out = np.zeros((math.comb(n, n1), n), dtype=bool)
        np.put_along_axis(out, np.array(list(combinations(range(n), n1)), dtype=int), True, axis=1)
        return out
    ranks = np.argsort(np.random.default_rng(seed).random((MAX_SPLITS - 1, n)), axis=1)
    return np.vstack([np.arange(n) < n1, ranks < n1])


def permutation_p(base: np.ndarray, cur: np.ndarray, *, seed: int = 0, alternative: str = "two-sided") -> np.ndarray:
    """Permutation p-values, base (m, n1) and cur (m, n2) -> (m,): the share of splits at least as extreme as row 0."""
    n1, n2, v, _, keep = _pooled(base, cur)
    s = _oriented(_split_stats(v, keep, splits(n1, n2, seed)), alternative)
    return (s >= _at_least(s[:, :1])).mean(axis=1)


def history_residuals(history: Sequence[Sequence[float]]) -> tuple[np.ndarray, int]:
    """Each run's log deviation from the median of its commit's other runs (2+ positive runs), and how many commits."""
    res = []
    for vals in history:
        v = np.asarray([x for x in vals if math.isfinite(x)], dtype=float)
        if v.size >= 2 and np.all(v > 0):
            lv, n = np.log(v), v.size
            others = np.broadcast_to(lv, (n, n))[~np.eye(n, dtype=bool)].reshape(n, n - 1)
            res.append(lv - np.median(others, axis=1))
    return (np.concatenate(res) if res else np.asarray([])), len(res)


def history_p(base: np.ndarray, cur: np.ndarray, residuals: np.ndarray, *, seed: int = 0,
              alternative: str = "two-sided") -> np.ndarray:
    """History p-values of positive values, base (m, n1) and cur (m, n2): against a null drawn from the residuals."""
    n1, n2, v, _, keep = _pooled(base, cur)
    res, observed = np.asarray(residuals, dtype=float), _observed(n1, n2)
    z = res[np.random.default_rng(seed).integers(0, res.size, size=(HISTORY_DRAWS, n1 + n2))]
    obs = _oriented(_split_stats(v, keep, observed)[:, 0], alternative)
    null = np.sort(_oriented(_split_stats(z, clean_mask(z, np.ones((HISTORY_DRAWS, 1), dtype=bool)), observed)[:, 0],
                             alternative))
    return (1.0 + null.size - np.searchsorted(null, _at_least(obs), side="left")) / (1.0 + null.size)


def noise_test(base: Sequence[float], cur: Sequence[float], *, alpha: float = ALPHA, seed: int = 0,
               history: Sequence[Sequence[float]] | None = None, exact: bool = False,
               worse: str | None = None) -> Test:
    """One metric's noise test; `history`: values per other commit; `exact`: a counter; `worse`: adds the gate's p."""
    b, c = ([float(x) for x in xs if is_number(x)] for xs in (base, cur))
    n1, n2 = len(b), len(c)
    if worse not in (None, "greater", "less"):
        raise ValueError(f"worse={worse!r}: 'greater' or 'less'")
    if not n1 or not n2:
        return Test("none", None, n_base=n1, n_cur=n2)
    sizes = dict(n_base=n1, n_cur=n2, worse=worse)
    if exact or (n1 > 1 and n2 > 1 and len(set(b)) == 1 and len(set(c)) == 1):
        changed = sorted(set(b)) != sorted(set(c))
        moved = statistics.median(c) - statistics.median(b)
        return Test("exact", changed, **sizes, why=COUNTER if exact else NO_SPREAD, worse_significant=None
                    if worse is None else changed and (moved > 0 if worse == "greater" else moved < 0))
    if n1 < 2 or n2 < 2:
        return Test("indicative", None, **sizes, why=ONE_RUN)
    if can_decide(n1, n2, alpha):
        method, used, p_of = "permutation", {}, partial(permutation_p, [b], [c], seed=seed)
    elif min(n1, n2) < HISTORY_MIN_RUNS:
        return Test("indicative", None, **sizes, why=TWO_RUNS)
    else:
        res, commits = history_residuals(history or [])
        used = dict(history_runs=int(res.size), history_commits=commits)
        if res.size < HISTORY_MIN_RESIDUALS or commits < HISTORY_MIN_COMMITS or min(b + c) <= 0:
            return Test("indicative", None, **sizes, why=NO_HISTORY, **used)
        method, p_of = "history", partial(history_p, [b], [c], res, seed=seed)
    p, est = float(p_of(alternative="two-sided")[0]), float(change_estimates([b], [c])[0])
    t = Test(method, p <= alpha, p_value=p, **sizes, change_pct=None if math.isnan(est) else est, **used)
    if worse is not None:
        t.p_worse = float(p_of(alternative=worse)[0])
        t.worse_significant = t.p_worse <= alpha
    return t


#: The gate's power, by simulating it on runs resampled from a comparison's own spread: simulated comparisons per
#: point; how often the gate must catch a change; fewer residuals: no estimate.
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
