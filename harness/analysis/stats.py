"""Noise tests (pure): is the difference between two sets of runs distinguishable from run-to-run noise?

By what the sample sizes allow:
- both sides >= 2 runs and Mann-Whitney U can reach the significance level with these sample sizes
  (two-sided exact minimum p = 2 / C(n1+n2, n1) < alpha, i.e. 4+ runs a side at alpha 0.05): Mann-Whitney U;
- both sides >= 2 runs otherwise: a bootstrap 95 % interval of the relative change of the median;
- one run on a side: "indicative" -- the delta is shown, never failed on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

ALPHA = 0.05
BOOTSTRAP_SAMPLES = 4000

@dataclass
class Test:
    method: str                     # mann-whitney | bootstrap | indicative | none
    significant: bool | None        # None: no statistics (indicative)
    p_value: float | None = None
    ci_pct: tuple[float, float] | None = None   # bootstrap 95 % interval of the relative change, in %


def mwu_min_p(n1: int, n2: int) -> float:
    """Smallest two-sided p-value the exact Mann-Whitney U test can give for these sample sizes."""
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def _bootstrap_ci(base: Sequence[float], cur: Sequence[float], *, samples: int, seed: int) -> tuple[float, float]:
    import numpy as np
    rng = np.random.default_rng(seed)
    b = np.asarray(base, dtype=float)
    c = np.asarray(cur, dtype=float)
    bm = np.median(b[rng.integers(0, len(b), size=(samples, len(b)))], axis=1)
    cm = np.median(c[rng.integers(0, len(c), size=(samples, len(c)))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = (cm - bm) / np.abs(bm) * 100.0
    rel = rel[np.isfinite(rel)]
    if rel.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(rel, [2.5, 97.5])
    return float(lo), float(hi)


def noise_test(base: Sequence[float], cur: Sequence[float], *, alpha: float = ALPHA, seed: int = 0,
               samples: int = BOOTSTRAP_SAMPLES) -> Test:
    n1, n2 = len(base), len(cur)
    if n1 < 2 or n2 < 2:
        return Test("indicative", None)
    if len(set(base)) == 1 and len(set(cur)) == 1:
        # No spread on either side: any difference is exact (e.g. token counts of a deterministic run).
        return Test("exact", base[0] != cur[0])
    if mwu_min_p(n1, n2) < alpha:
        from scipy.stats import mannwhitneyu
        p = float(mannwhitneyu(cur, base, alternative="two-sided").pvalue)
        return Test("mann-whitney", p < alpha, p_value=p)
    lo, hi = _bootstrap_ci(base, cur, samples=samples, seed=seed)
    if math.isnan(lo):
        return Test("bootstrap", None)
    return Test("bootstrap", lo > 0 or hi < 0, ci_pct=(lo, hi))
