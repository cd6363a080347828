"""Measure change-point detectors on this project's own run-to-run noise (Monte Carlo): the false-alarm rate on
A/A histories and the detection rate of a step, each detector's candidates confirmed by the gate's test
(harness/analysis/changepoints.py). Noise: the log deviations of tests/data/quick_timings.json's real quick runs
from their median, resampled. Usage: python scripts/measure_changepoints.py [TRIALS] [--uncontended] [DETECTOR...].
Only ruptures is a dependency; to measure the others: pip install asv, and pip install --no-deps
signal-processing-algorithms apache-otava (their pins conflict with torch's and numpy 2)."""
from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from llm_research_bench.harness.analysis.changepoints import commit_cuts, confirm, pelt
from llm_research_bench.harness.analysis.measures import Point
from llm_research_bench.harness.analysis.names import Threshold

ROOT = Path(__file__).resolve().parents[1]
COMMITS, RUNS, STEP_AT, THRESHOLD = 20, 3, 10, Threshold("execution_time_s", 5.0, "lower")


def residuals(uncontended: bool) -> np.ndarray:
    runs = json.loads((ROOT / "tests/data/quick_timings.json").read_text())["runs"]
    v = np.log([r["execution_time_s"] for r in runs if not (uncontended and r["contended"])])
    return v - np.median(v)


def e_divisive(values, seed: int = 0) -> list[int]:
    """E-divisive means (signal-processing-algorithms, MongoDB's), p 0.05, 100 permutations. Not a dependency:
    it pins numpy < 2 and setuptools < 71, which torch's setuptools >= 77 excludes (pip cannot resolve both)."""
    from signal_processing_algorithms.energy_statistics.energy_statistics import e_divisive as ed
    v = np.asarray(values, dtype=float)
    if v.size < 4 or np.ptp(v) == 0:
        return []
    np.random.seed(seed)
    return sorted(int(i) for i in ed(v, pvalue=0.05, permutations=100))


def otava(values) -> list[int]:
    """Apache Otava's change points (E-divisive in windows, t-test significance, its default p 0.001)."""
    from otava.analysis import compute_change_points
    return [int(c.index) for c in compute_change_points(list(values), max_pvalue=0.001)[0]]


def asv(values) -> list[int]:
    """asv's step detection (asv publish's regressions: a penalised piecewise-constant L1 fit)."""
    from asv.step_detect import detect_steps
    return [int(left) for left, *_ in detect_steps(list(values))[1:]]


DETECTORS = {"e-divisive (signal-processing-algorithms)": e_divisive,
             "PELT (ruptures), penalty 2 log n (BIC)": lambda v: pelt(v, 2.0, "l2"),
             "Otava": otava, "asv step_detect": asv,
             **{f"PELT (ruptures), penalty {k:g} log n": (lambda v, k=k: pelt(v, k, "l2")) for k in (3, 4, 8, 16)},
             **{f"PELT l1 (ruptures), penalty {k:g} log n": (lambda v, k=k: pelt(v, k, "l1")) for k in (1, 2)}}


def history(rng, res, step_pct: float) -> list[Point]:
    pts = []
    for c in range(COMMITS):
        scale = 10.0 * (1 + step_pct / 100 if c >= STEP_AT else 1.0)
        pts.append(Point(f"c{c}", list(scale * np.exp(rng.choice(res, RUNS))), f"t{c:03d}"))
    return pts


def trial(detect, pts, step: bool) -> tuple[bool, bool, float]:
    """(any raw candidate, the right outcome after confirmation, seconds)."""
    t0 = time.perf_counter()
    cuts = commit_cuts(pts, detect)
    found = [s.index for s in confirm(pts, cuts, series="s", metric="execution_time_s", threshold=THRESHOLD)
             if s.confirmed]
    dt = time.perf_counter() - t0
    ok = any(abs(i - STEP_AT) <= 1 for i in found) if step else bool(found)
    return bool(cuts), ok, dt


def main(trials: int, uncontended: bool) -> None:
    warnings.simplefilter("ignore")
    res = residuals(uncontended)
    print(f"noise: {res.size} {'uncontended' if uncontended else 'all'} quick runs, log-deviation sd {res.std(ddof=1):.3f}; {COMMITS} commits x {RUNS} runs, "
          f"gate {THRESHOLD.metric}:{THRESHOLD.pct:g}%, {trials} histories each")
    only = [a for a in sys.argv[1:] if a in DETECTORS]
    for name, detect in DETECTORS.items():
        if only and name not in only:
            continue
        row = [name]
        for step in (0.0, 10.0, 20.0):
            rng = np.random.default_rng(7)
            out = [trial(detect, history(rng, res, step), step > 0) for _ in range(trials)]
            raw, ok, dt = (np.mean([o[i] for o in out]) for i in range(3))
            row.append(f"{'A/A' if not step else f'+{step:g} %'}: raw {raw:.3f}, "
                       f"{'false alarms' if not step else 'detected'} {ok:.3f}, {dt * 1000:.0f} ms")
        print(" | ".join(row), flush=True)


if __name__ == "__main__":
    main(int(next((a for a in sys.argv[1:] if a.isdigit()), 200)), "--uncontended" in sys.argv)
