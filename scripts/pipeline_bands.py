"""A profile's time band for this machine class from a bench session over the pinned question set: the lines
to paste into engine/profiles.toml.

    make calibrate-bench        # = the two commands below (PROFILE=balanced for another profile)
    .venv/bin/pytest benches/test_pipeline.py -m quick --research-rounds 5 --research-remeasure 0 \\
        --research-budget-scale 10 --research-json out/calibrate.json
    .venv/bin/python scripts/pipeline_bands.py out/calibrate.json

The session document (schemas/session.schema.json) gives each question's median execution time over its
measured runs (benches[].verdicts[].time_s). One band serves every question of a profile, so it follows the rule
engine/profiles.toml documents over the questions: lower = 0.5 x the fastest question's median, upper = 2 x the
slowest question's median rounded up to 5 s. --research-budget-scale 10 keeps the bench's own verdicts (and
timeouts) out of the way of the measurement; it does not change the medians. Run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import math
import sys


def bands(doc: dict, bench: str = "pipeline") -> list[str]:
    """The profiles.toml lines of each profile the session ran `bench` on."""
    out = []
    for agg in doc.get("benches", []):
        timed = [v for v in agg["verdicts"] if v.get("time_s") is not None]
        if agg["bench"] != bench or not timed:
            continue
        times = [v["time_s"] for v in timed]
        fast, slow = min(times), max(times)
        runs = min(v["runs"] for v in timed)
        out += [f"[profiles.{agg['profile']}.budgets.{doc['machine_class']}]  # medians {fast:.1f}-{slow:.1f} s over "
                f"{len(times)} questions, >= {runs} runs each ({doc['datetime'][:10]}, commit {doc['commit']['id'][:12]})",
                f"time_s = [{fast * 0.5:.0f}, {5 * math.ceil(slow * 2 / 5):.0f}]"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("session", help="the --research-json document of the calibration session")
    p.add_argument("--bench", default="pipeline")
    a = p.parse_args(argv)
    lines = bands(json.loads(open(a.session, encoding="utf-8").read()), a.bench)
    if not lines:
        print(f"pipeline_bands: {a.session} has no measured run of the '{a.bench}' bench", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
