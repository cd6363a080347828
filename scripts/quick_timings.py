"""Write tests/data/quick_timings.json: real quick-run execution times measured on this machine, read from a results
store (the Monte-Carlo false-alarm test, tests/harness/analysis/test_false_alarms.py, draws its real run-to-run
noise from them).

    .venv/bin/python scripts/quick_timings.py RESULTS_DIR [RESULTS_DIR ...] --how "what was run" [--out FILE]

Keeps every usable (completed, measured, not re-measured) run of the quick pipeline bench by the real engine on
this machine, contended ones included (a shared runner gives them), with the other processes' CPU load the
harness measured during each.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llm_research_bench.harness.records import REAL_RUNNERS, is_usable
from llm_research_bench.harness.run.environment import machine_info
from llm_research_bench.harness.run.store import read_store

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "quick_timings.json"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", help="results folders to read")
    p.add_argument("--how", required=True, help="what was run to measure them (stored in the file)")
    p.add_argument("--out", default=str(OUT))
    a = p.parse_args(argv)
    m = machine_info()
    runs = []
    for d in a.results:
        for r in read_store(d, fingerprint=m.fingerprint).records:
            ex = r.extra or {}
            if r.bench != "pipeline" or r.profile != "quick" or not is_usable(r):
                continue
            if ex.get("runner", REAL_RUNNERS[0]) not in REAL_RUNNERS:
                continue
            runs.append({"execution_time_s": r.metric("execution_time_s"),
                         "other_cpu_load": ex.get("other_cpu_load"), "contended": bool(ex.get("contended")),
                         "commit": (r.commit or "")[:12], "side": (ex.get("continuous") or {}).get("side"),
                         "timestamp": r.timestamp})
    runs.sort(key=lambda x: x["timestamp"])
    doc = {"what": "real quick-profile pipeline runs (execution_time_s) of the embedded default model on this "
                   "machine; the harness's measure of other processes' CPU load during each",
           "how": a.how, "machine": m.fingerprint, "cpu": m.cpu_model, "cpu_logical": m.cpu_logical,
           "runs": runs}
    Path(a.out).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"{len(runs)} runs ({sum(x['contended'] for x in runs)} contended) -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
