"""Gate calibration bench (marker `calibration`, opt-in: `pytest benches -m calibration`; `make gate-calibration`):
how often does the compare gate fail a change that is not there, and how often does it catch a real 10 %
slowdown, with real interleaved runs on this machine?

1. Probe: a few quick runs of this commit size the slowdown: DELAY_S per streamed chunk = 10 % of the median
   execution time / the median number of generated tokens.
2. One interleaved session (run/continuous.py, the machinery of `research-bench continuous`) of three temporary
   worktrees of this commit: A and A2 (the same code: A/A) and B, whose worktree -- only there -- gets a
   patch: the engine's stream loop (engine/stream.py, StreamMeter.measure) sleeps DELAY_S after each
   non-empty chunk. Rounds interleave, each in another order of the three (A A2 B, A B A2, A2 A B, ...:
   run/interleave.py); each side imports its own worktree's engine.
3. Each side's rounds are cut into BLOCKS slots of SLOT consecutive rounds (default 15). Every slot is judged the
   way `research-bench continuous ... --research-rounds 5 --research-compare-fail execution_time_s:5%` judges a
   session, on its first 5 rounds (the goal's design); and, on the same runs, with its first 10 rounds, all 15,
   and sequentially (`--research-max-rounds 15`: a look every 5 rounds, more only while undecided;
   analysis/calibration.py). A vs A2 comparisons that fail are false alarms, A vs B ones that fail detections.

Stores one record (bench 'gate_calibration', extra['calibration']: the rates of every design, every comparison,
every run's time and contention, the delay, the realised slowdown) and asserts the goals for the 5-round design:
no false failure in >= 10 A/A comparisons, the 10 % slowdown caught in >= 90 %. Long: (BLOCKS x SLOT + 1) x 3
quick runs (RESEARCH_BENCH_CALIBRATION_BLOCKS, RESEARCH_BENCH_CALIBRATION_MAX_ROUNDS shorten it); run it under the
heavy lock. The side sessions' own records go to <results>/.gate-calibration/<run>/ (outside the store's layout:
B's slowed runs must not become this commit's history); only the calibration record is stored in the results store.
"""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from llm_research_bench.engine.envvars import env
from llm_research_bench.harness.analysis.calibration import design_summary, judge_designs, median_change, rate
from llm_research_bench.harness.analysis.names import parse_threshold
from llm_research_bench.harness.records import is_contended, is_superseded, is_usable
from llm_research_bench.harness.run.continuous import Worktrees, run_sides, session_records, side_pytest_args

pytestmark = [pytest.mark.calibration]
REPO = Path(__file__).resolve().parents[1]
BLOCKS = int(env("CALIBRATION_BLOCKS", "10"))     # RESEARCH_BENCH_CALIBRATION_BLOCKS: comparisons of each kind
BLOCK = 5                                          # the goal's design: 5 interleaved rounds a side
#: Every comparison owns a slot of this many consecutive rounds a side (RESEARCH_BENCH_CALIBRATION_MAX_ROUNDS):
#: judged on its first BLOCK rounds (the goal's design), its first 10, all of them, and sequentially (a look
#: every BLOCK rounds up to the slot, analysis/compare.py) -- every design on the same real runs.
SLOT = max(BLOCK, int(env("CALIBRATION_MAX_ROUNDS", "15")))
SLOWDOWN = 0.10
THRESHOLD = "execution_time_s:5%"
PROBE_ROUNDS = 5
#: The patch B's worktree gets: after this line of StreamMeter.measure ...
ANCHOR = "                    call.chunk_times.append(now)\n"
#: ... this one (DELAY_S filled in).
PATCH = "                    time.sleep({delay!r})   # gate calibration: B is slower (temporary worktree patch)\n"


def patch_slower(worktree: Path, delay_s: float) -> None:
    """Insert a sleep of delay_s after each non-empty streamed chunk into B's worktree only."""
    f = worktree / "engine" / "stream.py"
    text = f.read_text(encoding="utf-8")
    if ANCHOR not in text or "\nimport time\n" not in text:
        raise RuntimeError(f"{f}: the calibration patch's anchor line is gone; update ANCHOR in {__file__}")
    f.write_text(text.replace(ANCHOR, ANCHOR + PATCH.format(delay=delay_s), 1), encoding="utf-8")


def quiet_median(runs) -> float | None:
    """The probe's run time to size the slowdown on: the median of its final attempts timed on a quiet machine, else
    the fastest (a contended probe would size B's delay on an inflated time)."""
    final = [r.record for r in runs if not is_superseded(r.record)]
    times = [r.metric("execution_time_s") for r in final if r.metric("execution_time_s")]
    quiet = [r.metric("execution_time_s") for r in final if r.metric("execution_time_s") and not is_contended(r)]
    return statistics.median(quiet) if quiet else (min(times) if times else None)


def _pct(x) -> str:
    return "n/a" if x is None else f"{x:+.1f} %"


def _num(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def test_gate_calibration(research_bench, bench_question):
    say = research_bench.progress
    probe = research_bench.run(bench_question, profile="quick", rounds=PROBE_ROUNDS, warmup_runs=1, check=False,
                               gate=False, bench="gate_calibration_probe")
    t = quiet_median(probe.measured)
    tokens = probe.metric("tokens_generated").median
    assert t and tokens, "the probe runs did not complete: nothing to size the slowdown on"
    delay = round(SLOWDOWN * t / tokens, 5)
    say(f"gate calibration: probe median {t:.1f} s, {tokens:.0f} tokens: B sleeps {delay * 1000:.2f} ms "
        f"per streamed chunk (+{SLOWDOWN:.0%}); {BLOCKS} slots x {SLOT} rounds x 3 sides")
    run_id = uuid.uuid4().hex[:12]
    results = research_bench.ctx.options.results_dir / ".gate-calibration" / run_id
    rounds = BLOCKS * SLOT
    # the sides run the pipeline bench's lace-plant instance only: the question the probe sized the slowdown on
    args = side_pytest_args([str(REPO / "benches" / "test_pipeline.py"), "-m", "quick", "-k", "pq-21645374",
                             "--research-remeasure", "0",
                             "--research-budget-scale", "3", "-q"],
                            rounds=rounds, warmup_runs=1, results_dir=results)
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="research-bench-calibration-"))
    try:
        with Worktrees(REPO) as wt:
            sides = [wt.add("A", "HEAD"), wt.add("A2", "HEAD"), wt.add("B", "HEAD")]
            patch_slower(sides[2].path, delay)
            outcomes = run_sides(sides, args, cwd=REPO, run_id=run_id, echo=None, workdir=work)
    finally:
        elapsed = time.monotonic() - t0
    by = session_records(results, run_id)
    a, a2, b = by.get("A", []), by.get("A2", []), by.get("B", [])
    th = [parse_threshold(THRESHOLD)]
    designs = judge_designs(a, a2, b, block=BLOCK, slot=SLOT, thresholds=th)
    aa, ab = designs[f"{BLOCK} rounds"]          # the goal's design

    side_runs = {side: [{"round": r.round, "execution_time_s": r.metric("execution_time_s"),
                         "other_cpu_load": (r.extra or {}).get("other_cpu_load"),
                         "contended": bool((r.extra or {}).get("contended")), "timestamp": r.timestamp}
                        for r in recs if is_usable(r)] for side, recs in {"A": a, "A2": a2, "B": b}.items()}

    doc = {
        "how": f"one interleaved session (every order of A A2 B in turn) of {rounds} quick rounds a side after 1 "
               f"warm-up, sides in temporary worktrees of this commit; B's worktree patched to sleep {delay} s per "
               f"streamed chunk ({SLOWDOWN:.0%} of the probe's median); {BLOCKS} slots of {SLOT} rounds a side, "
               f"each judged with {THRESHOLD} on its first {BLOCK} rounds (the goal's design), and by the other "
               f"designs in 'designs'",
        "delay_s_per_chunk": delay, "probe_median_s": t, "probe_tokens": tokens,
        "target_slowdown_pct": SLOWDOWN * 100, "threshold": THRESHOLD, "block_rounds": BLOCK,
        "false_alarm_rate": rate(aa), "detection_rate": rate(ab), **design_summary(aa, ab),
        "realised_slowdown_pct_median": median_change(a, b), "aa_change_pct_median": median_change(a, a2),
        # the same rates over the blocks in which no run was timed on a busy machine
        "quiet_false_alarms": sum(x.failed for x in aa if not x.contended),
        "quiet_aa_comparisons": sum(1 for x in aa if not x.contended),
        "quiet_detections": sum(x.failed for x in ab if not x.contended),
        "quiet_ab_comparisons": sum(1 for x in ab if not x.contended),
        "slot_rounds": SLOT,
        # the same slots judged by every design: how many rounds a side this machine needs
        "designs": {name: design_summary(d_aa, d_ab) for name, (d_aa, d_ab) in designs.items()},
        "runs": side_runs,
        "median_s": {k: statistics.median(x["execution_time_s"] for x in v) if v else None
                     for k, v in side_runs.items()},
        "contended_share": (sum(x["contended"] for v in side_runs.values() for x in v)
                            / max(1, sum(len(v) for v in side_runs.values()))),
        "sides": {o.side.name: {"returncode": o.returncode, "commit": o.side.commit} for o in outcomes},
        "side_records": str(results),
        "elapsed_s": round(elapsed, 1), "load_avg_1m_end": round(os.getloadavg()[0], 2),
    }
    research_bench.record(probe.telemetry, profile="quick", bench="gate_calibration", extra={"calibration": doc},
                          check=False, gate=False)
    say("gate calibration: A/A false alarms {}/{}, A/B detections {}/{} (blocks without a contended run: {}/{} and "
        "{}/{}); realised slowdown {} (median of paired rounds); medians A {} s, A2 {} s, B {} s; {:.0%} of runs "
        "contended; {:.0f} min".format(
            doc["false_alarms"], len(aa), doc["detections"], len(ab), doc["quiet_false_alarms"],
            doc["quiet_aa_comparisons"], doc["quiet_detections"], doc["quiet_ab_comparisons"],
            _pct(doc["realised_slowdown_pct_median"]),
            *(_num(doc["median_s"][k]) for k in ("A", "A2", "B")), doc["contended_share"], elapsed / 60))
    for name, r in doc["designs"].items():
        say(f"gate calibration, {name} a side: A/A false alarms {r['false_alarms']}/{r['aa_comparisons']}, A/B "
            f"detections {r['detections']}/{r['ab_comparisons']} (rounds a side used on average: "
            f"{_num(r['mean_rounds_aa'])} A/A, {_num(r['mean_rounds_ab'])} A/B)")
    shutil.rmtree(work, ignore_errors=True)
    assert len(aa) >= 10 and len(ab) >= 10, f"too few complete blocks: {len(aa)} A/A, {len(ab)} A/B"
    assert doc["false_alarms"] == 0, doc["aa_blocks"]
    assert doc["detection_rate"] >= 0.9, doc["ab_blocks"]
