"""The memory-pressure bench (marker `memory_pressure`, opt-in; `make memory-pressure`): adaptive batch sizing
under real memory pressure, shown acting.

    pytest benches -m memory_pressure

1. A reference run measures the run's own footprint: the process-tree RSS the engine read before each batch
   (telemetry traces.batch_size: tree_rss_share x the profile's memory limit), on a profile with small batches
   and an 8k context so a run streams several batches (early exit off).
2. The pressure run uses the same profile with its memory limit set just above that footprint: the footprint is
   LIMIT_SHARE (0.42) of the limit, so the sizer grows batches (pressure < 0.5). After batch 0 a real memory hog
   (harness/run/pressure.py: a child process of this one, so inside the run's process tree) writes enough pages
   to bring the tree to HOG_SHARE (0.96) of the limit; the sizer reads pressure > 0.85 and shrinks; after batch 2
   the hog frees its memory, pressure falls back under 0.5 and the sizer grows again.
3. The run is stored (bench 'memory_pressure', not gated) with extra['memory_pressure']: the footprint, limit,
   hog size and its measured RSS, each sizing decision with its pressure reading, the shrinks that measured
   pressure caused, the grows after, and adaptive_batch_effectiveness as the run's telemetry computed it (the
   share of high-pressure decisions followed by a reading back at or under 0.85).

What it shows and what it does not: the shrink is caused by measured pressure and the batches do get smaller;
the pressure falls because the hog leaves, not because batches got smaller (llama.cpp allocates the KV cache for
the whole context window when the model loads, so the batch size barely moves the engine's RSS). The bench
states both. Expect 2-6 minutes on the 2-core machine (two research runs).
"""
from __future__ import annotations

import os
import time

import pytest

from llm_research_bench.engine import research
from llm_research_bench.engine.batching import HIGH_PRESSURE, LOW_PRESSURE
from llm_research_bench.engine.profiles import Budget
from llm_research_bench.harness.run import cpu
from llm_research_bench.harness.run.pressure import MemoryHog

pytestmark = [pytest.mark.memory_pressure]

#: The footprint's share of the pressure profile's memory limit (under LOW_PRESSURE: the sizer grows).
LIMIT_SHARE = 0.42
#: What the process tree holds, as a share of the limit, while the hog holds its memory (over HIGH_PRESSURE).
HOG_SHARE = 0.96
HOLD_AFTER_BATCH, FREE_AFTER_BATCH = 0, 2


def _pressure_profile(base, machine_class: str, memory_mb: float):
    """Small batches, 8k context, generous token budget: several batches per run, so the sizer decides often."""
    b = base.budget_for(machine_class)
    return base.with_overrides(
        name="memory_pressure", description="quick's model with small batches and an 8k context (pressure bench)",
        context_window=8192, batch_size=6, min_batch_size=2, max_batch_size=10, retrieve_k=96, max_tokens=4096,
        claim_tokens=128, synthesis_tokens=160, timeout_s=max(base.timeout_s, 600),
        budgets={machine_class: Budget(machine_class, b.time_lower_s, 10 * b.time_upper_s, round(memory_mb, 1))})


def test_memory_pressure(research_bench, record_result, bench_question):
    warm = research_bench.warmup()
    ctx = research_bench.ctx
    base = ctx.profile("quick")
    cls = ctx.machine_class
    ref_profile = _pressure_profile(base, cls, base.budget_for(cls).memory_mb)

    # 1. The footprint, measured by the engine itself in a reference run.
    ref = research_bench.run(bench_question, profile=ref_profile, early_exit=False, rounds=1, warmup_runs=0,
                             isolate=False, bench="memory_pressure_reference", check=False, gate=False)
    rt = ref.telemetry
    assert rt and rt.get("success"), f"the reference run failed: {ref.messages}"
    ref_limit = rt["profile"]["memory_limit_mb"]
    footprint = max(d["tree_rss_share"] for d in rt["traces"]["batch_size"]) * ref_limit
    limit = footprint / LIMIT_SHARE
    hog_mb = HOG_SHARE * limit - footprint
    prof = _pressure_profile(base, cls, limit)
    research_bench.progress(f"memory_pressure: footprint {footprint:.0f} MB (reference run, {len(rt['traces']['batch_size'])} "
                  f"sizing readings) -> limit {limit:.0f} MB; the hog will hold {hog_mb:.0f} MB")

    # 2. The pressure run: the hog holds memory between batches HOLD_AFTER_BATCH and FREE_AFTER_BATCH.
    events: list[dict] = []
    with MemoryHog() as hog:
        def on_event(kind: str, data: dict) -> None:
            if kind != "batch_done":
                return
            if data["batch"] == HOLD_AFTER_BATCH:
                t0 = time.perf_counter()
                rss = hog.hold(hog_mb)
                events.append({"after_batch": data["batch"], "action": "hold", "hog_rss_mb": rss,
                               "seconds": round(time.perf_counter() - t0, 3)})
            elif data["batch"] == FREE_AFTER_BATCH:
                rss = hog.free()
                events.append({"after_batch": data["batch"], "action": "free", "hog_rss_mb": rss})

        with cpu.CpuWatch() as fc:
            session = research(bench_question, profile=prof, corpus=warm.corpus, early_exit=False,
                               system_info=warm.system_info, on_event=on_event)
        hog_pid = hog.proc.pid
    tel = session.telemetry
    assert tel.get("success"), tel.get("errors")
    decisions = tel["traces"]["batch_size"]
    shrinks = [d for d in decisions if d["decision"] == "shrink" and d["pressure"] > HIGH_PRESSURE]
    first_shrink = min((d["batch"] for d in shrinks), default=None)
    grows_after = [d for d in decisions if d["decision"] == "grow" and first_shrink is not None
                   and d["batch"] > first_shrink and d["pressure"] < LOW_PRESSURE]
    doc = {
        "how": "reference run for the footprint (max process-tree RSS the engine read before a batch); pressure run "
               "with the memory limit set so the footprint is LIMIT_SHARE of it, and a memory-hog child process "
               "holding HOG_SHARE x limit - footprint between batches; pressure readings are the engine's own",
        "footprint_mb": round(footprint, 1), "memory_limit_mb": round(limit, 1), "limit_share": LIMIT_SHARE,
        "hog_mb": round(hog_mb, 1), "hog_share": HOG_SHARE, "hog_pid": hog_pid, "hog_events": events,
        "decisions": decisions,
        "shrinks_caused_by_pressure": len(shrinks), "grows_after_pressure": len(grows_after),
        "batch_sizes": [b["size"] for b in tel["traces"]["batches"] if b.get("admitted")],
        "adaptive_batch_effectiveness": tel["metrics"]["adaptive_batch_effectiveness"],
        "memory_peak_mb": tel["metrics"]["memory_peak_mb"],
        "foreign_cpu_share": None if fc.share is None else round(fc.share, 3),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "reading": "the sizer shrank because measured pressure crossed 0.85; pressure fell because the hog freed its "
                   "memory (llama.cpp allocates the KV cache for the whole context at load, so smaller batches barely "
                   "lower the engine's RSS): adaptive_batch_effectiveness counts relief, whatever caused it",
    }
    record_result(tel, profile=prof, bench="memory_pressure",
                  extra={"memory_pressure": doc, "representative_telemetry": True}, check=False, gate=False)
    research_bench.progress("memory_pressure: " + ", ".join(f"batch {d['batch']}: p={d['pressure']:.2f} {d['decision']} "
                                                  f"{d['old']}->{d['new']}" for d in decisions)
         + f"; adaptive_batch_effectiveness {doc['adaptive_batch_effectiveness']}")
    assert shrinks, f"no shrink under measured pressure: {decisions}"
    assert grows_after, f"no grow after the pressure was relieved: {decisions}"
