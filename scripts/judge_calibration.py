"""Judge a gate calibration session's stored runs again, with this checkout's gate (analysis/calibration.py).

    .venv/bin/python scripts/judge_calibration.py RESULTS/.gate-calibration/RUN [--block 5] [--slot 15]

The gate calibration bench (benches/test_calibration.py) keeps every side's records under
<results>/.gate-calibration/<run>/; when the gate changes, this reads those real runs again and prints each
design's false alarms (A vs A2, the same code) and detections (A vs B, the slowed side), so a new gate is judged on
the same runs as the old one. It reads records and prints; it stores nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tabulate import tabulate

from llm_research_bench.harness.analysis.calibration import design_summary, judge_designs, median_change
from llm_research_bench.harness.analysis.names import parse_threshold
from llm_research_bench.harness.run.store import read_store


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("session", type=Path, help="<results>/.gate-calibration/<run>: the sides' records")
    ap.add_argument("--block", type=int, default=5, help="rounds a side of the basic design (default 5)")
    ap.add_argument("--slot", type=int, default=None, help="rounds a side each comparison owns (default: the "
                    "longest that gives 10 comparisons, at least --block)")
    ap.add_argument("--threshold", default="execution_time_s:5%")
    o = ap.parse_args(argv)
    by: dict[str, list] = {}
    for r in read_store(o.session).records:
        side = ((r.extra or {}).get("continuous") or {}).get("side")
        if side and not r.warmup:
            by.setdefault(side, []).append(r)
    a, a2, b = by.get("A", []), by.get("A2", []), by.get("B", [])
    if not (a and a2 and b):
        print(f"{o.session}: no A, A2 and B records of a gate calibration session", file=sys.stderr)
        return 2
    n = min(len(a), len(a2), len(b))
    slot = o.slot or max(o.block, n // 10)
    designs = judge_designs(a, a2, b, block=o.block, slot=slot, thresholds=[parse_threshold(o.threshold)])
    rows = []
    for name, (aa, ab) in designs.items():
        s = design_summary(aa, ab)
        rows.append([name, f"{s['false_alarms']}/{s['aa_comparisons']}", f"{s['detections']}/{s['ab_comparisons']}",
                     f"{s['mean_rounds_aa']:.1f} / {s['mean_rounds_ab']:.1f}" if aa and ab else "-"])
    print(f"{o.session}: {n} rounds a side; slots of {slot}; realised slowdown "
          f"{median_change(a, b):+.1f} % (median of paired rounds); A/A {median_change(a, a2):+.1f} %")
    print(tabulate(rows, headers=["design", "A/A false alarms", "A/B detections", "mean rounds a side (A/A / A/B)"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
