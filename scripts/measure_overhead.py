"""Harness overhead: the instrumented path the plugin takes for each run (harness.run.bench.InstanceRunner: run, schema
validation, verdict, atomic record append) against a bare `engine.research` call, on the same warm process.

    .venv/bin/python scripts/measure_overhead.py [--pairs 3] [--profile quick] [--out overhead.json]

Both sides get the same arguments (profile, the warm corpus, system facts). Pairs alternate their order so
that drift (thermal, other load) hits both sides alike. Reported:
- harness time per run: instrumented wall minus the research call inside it (measured directly: the
  bookkeeping the harness adds), as a share of the research call;
- engine-measured execution_time_s of bare vs instrumented runs (does the harness slow the run itself?);
- end-to-end medians of both sides (noisy on a shared machine: read with the per-pair spread).
Records go to a temporary results dir (or --results-dir), never to the project's results/.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_research_bench.harness import DEFAULT_QUESTION  # noqa: E402
from llm_research_bench.harness.run.context import BenchContext, HarnessOptions  # noqa: E402
from llm_research_bench.harness.plugin.options import load_profiles  # noqa: E402
from llm_research_bench.harness.run.bench import InstanceRunner, RunPlan  # noqa: E402
from llm_research_bench.harness.run.warmup import warm_up  # noqa: E402
from llm_research_bench.harness.run.request import RunRequest  # noqa: E402


def summarize(pairs: list[dict], **about) -> dict:
    """The pairs' medians, as printed and written with --out."""
    med = statistics.median
    harness_s = med(p["instrumented"]["harness_s"] for p in pairs)
    research_s = med(p["instrumented"]["research_wall_s"] for p in pairs)
    bare_wall = med(p["bare"]["wall_s"] for p in pairs)
    inst_wall = med(p["instrumented"]["wall_s"] for p in pairs)
    bare_exec = med(p["bare"]["execution_time_s"] for p in pairs)
    inst_exec = med(p["instrumented"]["execution_time_s"] for p in pairs)
    diffs = [(p["instrumented"]["wall_s"] - p["bare"]["wall_s"]) / p["bare"]["wall_s"] * 100 for p in pairs]
    summary = {
        "profile": about["profile"], "pairs": len(pairs), "machine": about["machine"],
        "harness_time_per_run_s": round(harness_s, 4),
        "harness_overhead_pct": round(harness_s / research_s * 100, 3),
        "bare_wall_median_s": round(bare_wall, 3), "instrumented_wall_median_s": round(inst_wall, 3),
        "end_to_end_overhead_pct": round((inst_wall - bare_wall) / bare_wall * 100, 2),
        "paired_diff_pct": [round(d, 2) for d in diffs],
        "bare_execution_time_median_s": bare_exec, "instrumented_execution_time_median_s": inst_exec,
        "results_dir": str(about["results_dir"]), "pairs_raw": pairs,
    }
    print(f"\nharness time per run: {harness_s * 1000:.1f} ms = {summary['harness_overhead_pct']:.2f} % of the "
          f"research call (goal <= 2 %)")
    print(f"end to end (medians): bare {bare_wall:.2f} s, instrumented {inst_wall:.2f} s "
          f"({summary['end_to_end_overhead_pct']:+.2f} %; per pair {', '.join(f'{d:+.1f} %' for d in diffs)})")
    print(f"engine-measured execution_time_s (medians): bare {bare_exec:.2f} s, instrumented {inst_exec:.2f} s")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--question", default=DEFAULT_QUESTION)
    ap.add_argument("--results-dir", default=None)
    ap.add_argument("--out", default=None, help="write the numbers as JSON here")
    a = ap.parse_args(argv)

    from llm_research_bench import engine

    results_dir = Path(a.results_dir or tempfile.mkdtemp(prefix="overhead-results-"))
    profiles = load_profiles(None)
    prof = profiles[a.profile]
    ctx = BenchContext(HarnessOptions(profiles=profiles, selected=None, profiles_file=None, machine_class=None,
                                      results_dir=results_dir), Path.cwd())
    core = InstanceRunner(ctx, "scripts/measure_overhead.py::instrumented[%s]" % prof.name, bench="overhead")
    _ = ctx.git, ctx.machine, ctx.machine_class

    warm = warm_up()
    print(f"warm-up {warm.seconds:.1f} s (index cache hit: {warm.index_cache_hit}); one bare run to warm the "
          f"model file and llama.cpp", flush=True)
    engine.research(a.question, profile=prof, corpus=warm.corpus, system_info=warm.system_info)

    def bare() -> dict:
        t0 = time.perf_counter()
        s = engine.research(a.question, profile=prof, corpus=warm.corpus, system_info=warm.system_info)
        return {"wall_s": time.perf_counter() - t0, "execution_time_s": s.telemetry["metrics"]["execution_time_s"]}

    def instrumented() -> dict:
        req = RunRequest(question=a.question, profile=prof, corpus=warm.corpus, system_info=warm.system_info)
        t0 = time.perf_counter()
        res = core.run(req, RunPlan(rounds=1, warmup_runs=0, isolate=False))
        wall = time.perf_counter() - t0
        (rr,) = res.runs
        assert rr.record.schema_valid and rr.path is not None and rr.path.exists()
        return {"wall_s": wall, "research_wall_s": rr.outcome.wall_s,
                "harness_s": wall - rr.outcome.wall_s,
                "execution_time_s": rr.record.metric("execution_time_s"), "target_met": rr.record.target_met}

    pairs = []
    for i in range(a.pairs):
        if i % 2 == 0:
            b, h = bare(), instrumented()
        else:
            h, b = instrumented(), bare()
        pairs.append({"bare": b, "instrumented": h})
        print(f"pair {i + 1}: bare {b['wall_s']:.2f} s | instrumented {h['wall_s']:.2f} s "
              f"(research {h['research_wall_s']:.2f} s + harness {h['harness_s'] * 1000:.1f} ms)", flush=True)

    summary = summarize(pairs, profile=prof.name, machine=ctx.machine.fingerprint, results_dir=results_dir)
    if a.out:
        Path(a.out).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
