"""Noise tests (pure): is the difference between two sets of runs distinguishable from run-to-run noise?

Every method that can call a change significant (and so fail `--research-compare-fail`) keeps its false-alarm
rate at alpha; tests/harness/analysis/test_false_alarms.py checks this by Monte Carlo over thousands of A/A pairs
drawn from real stored quick-run timings of the CI machine and from a model with occasional 2x spikes.

Every method gives a two-sided p (is there a change at all? shown in tables, used for the history chart's marks)
and, where the caller names the worse direction, a one-sided p toward it (`p_worse`): the gate fails only a
change for the worse, so a one-sided test at alpha keeps its false failures at alpha and has more power than a
two-sided one, whose false failures would be alpha / 2 (blocks of 5 v 5 resampled from this machine's
interleaved quick runs, the slowed side scaled to +10 %: caught in 0.38-0.41 of them two-sided, 0.54-0.57
one-sided).

By what the data allow, in this order:
- exact: the metric is a deterministic counter (the schema's `x-compare: exact`, e.g. tokens_generated under
  greedy decoding) or neither side has any spread: any difference is a change, shown with both values.
- permutation: both sides have 2+ runs and the permutation distribution can reach alpha (4 v 4, 3 v 4, 2 v 5,
  5 v 5 ...; not 3 v 3). The statistic is the difference of the sides' means of log values with spikes left
  out: a pooled run further than x1.5 from the pooled median is a spike (decided on the pooled runs alone, so
  the test stays exact; when more than a quarter of the runs would be spikes, they are the change itself and
  all are kept). p is the share of all ways to split the pooled runs into two sides of these sizes (1,999
  random splits + the observed one when there are more than 2,000) whose statistic is at least as large as the
  observed one's. Under A/A the runs are exchangeable, so P(p <= alpha) <= alpha at every sample size, spikes
  or not; and one 2x spike per side does not hide a 15 % change with 5+ runs a side.
- history: 3+ runs a side, too few for the permutation test (3 v 3), and the series has enough runs on recent
  commits of this machine: the null distribution of the same statistic is drawn from the series' own
  run-to-run spread there (each run's deviation from the median of its commit's other runs: leave-one-out,
  which overstates the spread a little and so errs on the safe side), the way conbench and Bencher estimate
  noise from history.
- indicative: otherwise (one or two runs on a side, or 3 v 3 without history): the delta is shown, never
  failed on.

Vectorised with numpy over a batch of pairs, so the Monte-Carlo check runs exactly this code, fast.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

import numpy as np

ALPHA = 0.05
#: Exact enumeration of the splits up to this many; above it, this many random splits (the observed included).
MAX_SPLITS = 2000
#: Draws of the history method's null distribution.
HISTORY_DRAWS = 4000
#: History needs at least this many leave-one-out deviations from at least HISTORY_MIN_COMMITS commits.
HISTORY_MIN_RESIDUALS = 10
HISTORY_MIN_COMMITS = 3
#: Fewer runs a side than this: no history test (2 runs cannot tell a spike from a change).
HISTORY_MIN_RUNS = 3
#: A pooled value further than SPIKE_DISTANCE from the pooled median is a spike and left out of both sides'
#: means -- unless more than SPIKE_SHARE of the values would be (then it is not a spike but the change itself,
#: and nothing is left out).
SPIKE_DISTANCE = 0.4        # on the log scale (x1.5 or /1.5); times the pooled median's size on the raw scale
SPIKE_SHARE = 0.25


@dataclass
class Test:
    method: str                     # exact | permutation | history | indicative | none
    significant: bool | None        # None: no statistics (indicative)
    p_value: float | None = None     # two-sided
    n_base: int = 0
    n_cur: int = 0
    #: history: how much history the noise estimate used (runs, commits)
    history_runs: int = 0
    history_commits: int = 0
    #: why a result is only indicative (ONE_RUN, TWO_RUNS, NO_HISTORY) or exact (COUNTER, NO_SPREAD)
    why: str = ""
    #: one-sided toward the worse direction ("greater": larger values are worse; "less"), when the caller named it
    worse: str | None = None
    p_worse: float | None = None
    worse_significant: bool | None = None   # the gate's verdict: a change for the worse beyond noise
    #: the test's own estimate of the change, in % (permutation and history): the spike-trimmed geometric-mean
    #: ratio - 1 (the difference of the kept log values' means; on the raw scale for values that are not all
    #: positive, relative to the base's kept mean). The gate holds it against the threshold: under the bimodal
    #: run-to-run noise of a shared runner the medians' change is far less stable than this mean.
    change_pct: float | None = None

#: Why a result is indicative: one run on a side (no noise estimate); two runs on a side (too few for the
#: permutation test, and two runs cannot tell a spike from a change); too few for the permutation test and not
#: enough history of the series on recent commits.
ONE_RUN, TWO_RUNS, NO_HISTORY = "one_run", "two_runs", "no_history"
#: Why a comparison is exact: a deterministic counter (schema x-compare: exact); no spread on either side.
COUNTER, NO_SPREAD = "counter", "no_spread"


# -- the statistic ---------------------------------------------------------------------------------------------
def _scale(z: np.ndarray) -> np.ndarray:
    """Per row (one pair's pooled runs): log values when all are positive, else raw values."""
    pos = np.all(z > 0, axis=-1, keepdims=True)
    return np.where(pos, np.log(np.where(z > 0, z, 1.0)), z), pos


def clean_mask(z: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Per row of pooled values (on the test's scale): True for the values kept, False for spikes. A function of
    the pooled values alone, so the permutation distribution stays exact."""
    med = np.median(z, axis=-1, keepdims=True)
    spike = np.abs(z - med) > np.where(pos, SPIKE_DISTANCE, SPIKE_DISTANCE * np.maximum(np.abs(med), 1e-12))
    too_many = spike.sum(axis=-1, keepdims=True) > SPIKE_SHARE * z.shape[-1]
    return ~spike | too_many


def _split_stats(v: np.ndarray, keep: np.ndarray, in_base: np.ndarray) -> np.ndarray:
    """mean of cur's kept values - mean of base's kept values, for every split: v, keep (m, N); in_base (S, N)
    (True where a value is on the base side) -> (m, S). 0 where a side keeps nothing."""
    w = keep.astype(float)
    vw = np.where(keep, v, 0.0)
    mb = in_base.T.astype(float)
    sum_b, cnt_b = vw @ mb, w @ mb
    sum_c = vw.sum(axis=1, keepdims=True) - sum_b
    cnt_c = w.sum(axis=1, keepdims=True) - cnt_b
    ok = (cnt_b > 0) & (cnt_c > 0)
    np.divide(sum_c, cnt_c, out=sum_c, where=ok)
    np.divide(sum_b, cnt_b, out=sum_b, where=ok)
    np.subtract(sum_c, sum_b, out=sum_c)
    sum_c[~ok] = 0.0
    return sum_c


#: What a p-value measures: any change ("two-sided"), the current side larger ("greater") or smaller ("less").
ALTERNATIVES = ("two-sided", "greater", "less")


def _oriented(stat: np.ndarray, alternative: str) -> np.ndarray:
    """The statistic turned so that larger is more extreme under the alternative."""
    if alternative == "two-sided":
        return np.abs(stat)
    if alternative == "greater":
        return stat
    if alternative == "less":
        return -stat
    raise ValueError(f"alternative {alternative!r}: one of {', '.join(ALTERNATIVES)}")


def _at_least(null: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """null >= obs, with a little room for floating-point ties (the observed split is among the nulls)."""
    return null >= obs - 1e-9 * np.maximum(1.0, np.abs(obs))


# -- the permutation test ---------------------------------------------------------------------------------------
def n_splits(n1: int, n2: int) -> int:
    return math.comb(n1 + n2, n1)


def min_p(n1: int, n2: int) -> float:
    """Smallest p-value the permutation test can give for these sample sizes (the observed split and, when the
    sides are equal in size, its mirror)."""
    s = n_splits(n1, n2)
    if s > MAX_SPLITS:
        return 1.0 / MAX_SPLITS
    return (2.0 if n1 == n2 else 1.0) / s


def can_decide(n1: int, n2: int, alpha: float = ALPHA) -> bool:
    """Whether the permutation test can reach alpha with these sample sizes."""
    return n1 >= 2 and n2 >= 2 and min_p(n1, n2) <= alpha


def splits(n1: int, n2: int, seed: int = 0) -> np.ndarray:
    """(S, n1 + n2) booleans, True where a pooled value is on the base side; row 0 is the observed split (the
    first n1 values). Every split when there are at most MAX_SPLITS, else the observed one and MAX_SPLITS - 1
    random ones."""
    from itertools import combinations

    n = n1 + n2
    if n_splits(n1, n2) <= MAX_SPLITS:
        out = np.zeros((n_splits(n1, n2), n), dtype=bool)
        for row, combo in enumerate(combinations(range(n), n1)):   # (0..n1-1) comes first
            out[row, list(combo)] = True
        return out
    rng = np.random.default_rng(seed)
    ranks = np.argsort(rng.random((MAX_SPLITS - 1, n)), axis=1)
    return np.vstack([np.arange(n) < n1, ranks < n1])


def _pooled(base: np.ndarray, cur: np.ndarray) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray]:
    """A batch's pooled runs on the test's scale: n1, n2, values (m, n1 + n2), log scale per row (m, 1), kept."""
    base = np.atleast_2d(np.asarray(base, dtype=float))
    cur = np.atleast_2d(np.asarray(cur, dtype=float))
    v, pos = _scale(np.concatenate([base, cur], axis=1))
    return base.shape[1], cur.shape[1], v, pos, clean_mask(v, pos)


def permutation_stats(base: np.ndarray, cur: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """The signed statistic of every split for a batch: base (m, n1), cur (m, n2) -> (m, S); column 0 is the
    observed split. One call gives every alternative's p (p_from)."""
    n1, n2, v, _, keep = _pooled(base, cur)
    return _split_stats(v, keep, splits(n1, n2, seed))


def p_from(stat: np.ndarray, alternative: str = "two-sided") -> np.ndarray:
    """Permutation p-values from permutation_stats: the share of splits at least as extreme as the observed one."""
    s = _oriented(stat, alternative)
    return _at_least(s, s[:, :1]).mean(axis=1)


def permutation_p(base: np.ndarray, cur: np.ndarray, *, seed: int = 0, alternative: str = "two-sided") -> np.ndarray:
    """Permutation p-values for a batch: base (m, n1), cur (m, n2) -> (m,)."""
    return p_from(permutation_stats(base, cur, seed=seed), alternative)


def change_estimates(base: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """The change the permutation and history tests measure, in %, for a batch -> (m,): exp(mean of cur's kept log
    values - mean of base's kept log values) - 1, spikes left out as the tests leave them out (on the raw scale,
    for rows that are not all positive: relative to the base's kept mean). NaN where a side keeps nothing."""
    n1, n2, v, pos, keep = _pooled(base, cur)
    diff = _split_stats(v, keep, np.arange(n1 + n2)[None, :] < n1)[:, 0]
    kb = keep[:, :n1]
    base_mean = np.where(kb, v[:, :n1], 0.0).sum(axis=1) / np.maximum(kb.sum(axis=1), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(base_mean != 0, diff / np.abs(base_mean), np.nan)
    out = np.where(pos[:, 0], np.expm1(diff), raw) * 100.0
    return np.where(kb.any(axis=1) & keep[:, n1:].any(axis=1), out, np.nan)


# -- the history test ---------------------------------------------------------------------------------------------
def history_residuals(history: Sequence[Sequence[float]]) -> tuple[np.ndarray, int]:
    """Leave-one-out deviations of each run's log value from the median of its commit's other runs (commits with
    2+ positive runs); and how many commits contributed."""
    res: list[float] = []
    commits = 0
    for vals in history:
        v = np.asarray([x for x in vals if math.isfinite(x)], dtype=float)
        if v.size < 2 or not np.all(v > 0):
            continue
        lv = np.log(v)
        commits += 1
        res += [float(lv[i] - np.median(np.delete(lv, i))) for i in range(lv.size)]
    return np.asarray(res), commits


def history_stats(base: np.ndarray, cur: np.ndarray, residuals: np.ndarray, *, seed: int = 0,
                  draws: int = HISTORY_DRAWS) -> tuple[np.ndarray, np.ndarray]:
    """For a batch of positive values, base (m, n1) and cur (m, n2): the observed signed statistic (m,) and its null
    distribution drawn from history residuals (log scale), (draws,). One call gives every alternative's p."""
    base = np.atleast_2d(np.asarray(base, dtype=float))
    cur = np.atleast_2d(np.asarray(cur, dtype=float))
    n1, n2 = base.shape[1], cur.shape[1]
    observed = np.arange(n1 + n2)[None, :] < n1
    v, pos = _scale(np.concatenate([base, cur], axis=1))
    obs = _split_stats(v, clean_mask(v, pos), observed)[:, 0]
    rng = np.random.default_rng(seed)
    res = np.asarray(residuals, dtype=float)
    z = res[rng.integers(0, res.size, size=(draws, n1 + n2))]
    null = _split_stats(z, clean_mask(z, np.ones((draws, 1), dtype=bool)), observed)[:, 0]
    return obs, null


def history_p_from(obs: np.ndarray, null: np.ndarray, alternative: str = "two-sided") -> np.ndarray:
    """History p-values from history_stats."""
    o, n = _oriented(obs, alternative), np.sort(_oriented(null, alternative))
    ge = n.size - np.searchsorted(n, o - 1e-9 * np.maximum(1.0, np.abs(o)), side="left")
    return (1.0 + ge) / (1.0 + n.size)


def history_p(base: np.ndarray, cur: np.ndarray, residuals: np.ndarray, *, seed: int = 0,
              draws: int = HISTORY_DRAWS, alternative: str = "two-sided") -> np.ndarray:
    """p-values for a batch of positive values, base (m, n1) and cur (m, n2), against the statistic's null
    distribution drawn from history residuals (log scale)."""
    return history_p_from(*history_stats(base, cur, residuals, seed=seed, draws=draws), alternative)


def change_estimate(base: Sequence[float], cur: Sequence[float]) -> float | None:
    """change_estimates for one pair (None where a side keeps nothing)."""
    x = float(change_estimates(np.asarray([base], dtype=float), np.asarray([cur], dtype=float))[0])
    return None if math.isnan(x) else x


# -- one comparison ---------------------------------------------------------------------------------------------
def noise_test(base: Sequence[float], cur: Sequence[float], *, alpha: float = ALPHA, seed: int = 0,
               history: Sequence[Sequence[float]] | None = None, exact: bool = False,
               worse: str | None = None) -> Test:
    """The noise test of one metric: base and current runs' values; `history`: the same series' values on other
    recent commits of this machine, one list per commit (used only where the permutation test cannot decide);
    `exact`: the metric is a deterministic counter; `worse`: "greater" or "less", the direction that is worse
    for this metric (adds the one-sided p toward it, which the gate uses)."""
    b = [float(x) for x in base if isinstance(x, (int, float)) and math.isfinite(x)]
    c = [float(x) for x in cur if isinstance(x, (int, float)) and math.isfinite(x)]
    n1, n2 = len(b), len(c)
    if worse is not None and worse not in ("greater", "less"):
        raise ValueError(f"worse={worse!r}: 'greater' or 'less'")
    if not n1 or not n2:
        return Test("none", None, n_base=n1, n_cur=n2)
    if exact or (n1 > 1 and n2 > 1 and len(set(b)) == 1 and len(set(c)) == 1):
        # No spread (e.g. token counts of a deterministic run): any difference is exact.
        changed = sorted(set(b)) != sorted(set(c))
        t = Test("exact", changed, n_base=n1, n_cur=n2, why=COUNTER if exact else NO_SPREAD, worse=worse)
        if worse is not None:
            moved = statistics.median(c) - statistics.median(b)
            t.worse_significant = changed and (moved > 0 if worse == "greater" else moved < 0)
        return t
    if n1 < 2 or n2 < 2:
        return Test("indicative", None, n_base=n1, n_cur=n2, why=ONE_RUN, worse=worse)
    if can_decide(n1, n2, alpha):
        stat = permutation_stats(np.asarray([b]), np.asarray([c]), seed=seed)
        p = float(p_from(stat)[0])
        t = Test("permutation", p <= alpha, p_value=p, n_base=n1, n_cur=n2, worse=worse,
                 change_pct=change_estimate(b, c))
        if worse is not None:
            t.p_worse = float(p_from(stat, worse)[0])
            t.worse_significant = t.p_worse <= alpha
        return t
    if min(n1, n2) < HISTORY_MIN_RUNS:
        return Test("indicative", None, n_base=n1, n_cur=n2, why=TWO_RUNS, worse=worse)
    res, commits = history_residuals(history or [])
    if res.size < HISTORY_MIN_RESIDUALS or commits < HISTORY_MIN_COMMITS or min(b + c) <= 0:
        return Test("indicative", None, n_base=n1, n_cur=n2, why=NO_HISTORY, history_runs=int(res.size),
                    history_commits=commits, worse=worse)
    obs, null = history_stats(np.asarray([b]), np.asarray([c]), res, seed=seed)
    p = float(history_p_from(obs, null)[0])
    t = Test("history", p <= alpha, p_value=p, n_base=n1, n_cur=n2, history_runs=int(res.size),
             history_commits=commits, worse=worse, change_pct=change_estimate(b, c))
    if worse is not None:
        t.p_worse = float(history_p_from(obs, null, worse)[0])
        t.worse_significant = t.p_worse <= alpha
    return t
