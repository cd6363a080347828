"""Contention slowdown of quick runs: quiet vs one core held by a real busy-loop process.

    flock /tmp/research-bench-heavy.lock .venv/bin/python scripts/measure_contention.py --runs 3 --out c.jsonl
    ... --before /path/to/pkg     A/B: also run an older engine (a folder holding its `llm_research_bench` package;
                                 --after likewise for this side, e.g. a snapshot while the checkout changes)

Each side runs in its own long-lived worker process that warms up once (corpus, embedder, index, one research
run without a deadline), then researches on request. The parent interleaves the runs -- per round: quiet and contended, each on
every side, the orders alternating from round to round -- so drift and other processes' load hit all alike. A
contended run starts a separate `python -c "while True: pass"` process one second before the run and stops it
after. Each run appends one JSON line: side, mode, execution_time_s, timed_out, the thread count the engine
chose and why, tokens, decode tok/s, cpu_time_s (where the engine stores it), the cores other processes kept busy
during the run (the machine's busy time minus the worker's own, busy loop included) and the 1-minute load. The
summary gives the medians per side and mode, and the slowdown (contended / quiet median). `--cap S` stops a run
after S seconds with a harness-style SIGALRM timeout (for engines that do not enforce their timeout).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

import psutil

QUESTION = "Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?"


def _busy() -> float:
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def _own() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


def worker(profile: str, cap: float) -> int:
    """Serve research runs: one line in ('quiet' | 'contended'), one JSON line out."""
    from llm_research_bench import engine
    from llm_research_bench.engine import pipeline  # noqa: F401 -- everything imported before the first run
    from llm_research_bench.engine.corpus import DEFAULT_PUBMEDQA, load_corpus
    from llm_research_bench.engine.deadline import RunTimeout
    from llm_research_bench.engine.embed import shared_embedder
    from llm_research_bench.engine.index import HNSWIndex

    class Capped(RunTimeout):
        """This script's own cap on a run (a harness-style timeout)."""

    def _fire(signum, frame):
        raise Capped(f"run passed the script's {cap:g} s cap")

    signal.signal(signal.SIGALRM, _fire)
    corpus = load_corpus(DEFAULT_PUBMEDQA)
    HNSWIndex.build_or_load(corpus, shared_embedder())
    no_deadline = {"timeout_s": 0} if "timeout_s" in engine.research.__code__.co_varnames else {}
    engine.research(QUESTION, profile=profile, corpus=corpus, **no_deadline)     # warm-up, not reported
    print("ready", flush=True)
    for line in sys.stdin:
        mode = line.strip()
        b0, o0, t0 = _busy(), _own(), time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, cap)
        try:
            tel = engine.research(QUESTION, profile=profile, corpus=corpus).telemetry
        except engine.ResearchFailed as e:
            tel = e.telemetry
        except RunTimeout as e:
            tel = e.research_telemetry
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        wall = time.monotonic() - t0
        m = tel["metrics"]
        print(json.dumps({
            "mode": mode, "execution_time_s": m["execution_time_s"], "timed_out": tel.get("timed_out", False),
            "success": tel["success"], "n_threads": tel["model"].get("n_threads"), "threads": tel.get("threads"),
            "tokens_generated": m["tokens_generated"], "tokens_per_second": m["tokens_per_second"],
            "cpu_time_s": m.get("cpu_time_s"), "early_exit": tel["early_exit"]["reason"],
            "other_cores_busy": round(max(0.0, (_busy() - b0) - (_own() - o0)) / wall, 2),
            "load_avg_1m": round(psutil.getloadavg()[0], 2)}), flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3, help="runs per side and mode")
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--cap", type=float, default=300.0, help="stop a run after this many seconds (SIGALRM)")
    ap.add_argument("--out", default=None, help="append one JSON line per run here")
    ap.add_argument("--before", default=None, help="folder holding an older llm_research_bench package (A/B)")
    ap.add_argument("--after", default=None, help="folder holding the package of the 'after' side (default: "
                                                  "the installed one)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a.profile, a.cap)

    sides = {"after": {**os.environ, "PYTHONPATH": a.after} if a.after else dict(os.environ)}
    if a.before:
        sides = {"before": {**os.environ, "PYTHONPATH": a.before}, **sides}
    workers = {}
    for side, env in sides.items():          # one after the other: warming up is heavy
        p = subprocess.Popen([sys.executable, __file__, "--worker", "--profile", a.profile, "--cap", str(a.cap)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        workers[side] = p
        line = p.stdout.readline().strip()
        if line != "ready":
            raise SystemExit(f"{side} worker did not start ({line!r})")
    rows = []
    try:
        for i in range(a.runs):
            modes = ["quiet", "contended"] if i % 2 == 0 else ["contended", "quiet"]
            order = list(workers) if i % 2 == 0 else list(reversed(workers))
            for mode in modes:
                for side in order:
                    hog = None
                    if mode == "contended":
                        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                        time.sleep(1.0)
                    try:
                        workers[side].stdin.write(mode + "\n")
                        workers[side].stdin.flush()
                        row = {"side": side, "round": i, **json.loads(workers[side].stdout.readline())}
                    finally:
                        if hog is not None:
                            hog.kill()
                            hog.wait()
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    if a.out:
                        with open(a.out, "a") as fh:
                            fh.write(json.dumps(row) + "\n")
                    time.sleep(2.0)
    finally:
        for p in workers.values():
            p.stdin.close()
            p.wait(timeout=60)
    for side in workers:
        med = {}
        for mode in ("quiet", "contended"):
            sel = [r for r in rows if r["side"] == side and r["mode"] == mode]
            med[mode] = statistics.median(r["execution_time_s"] for r in sel)
            print(f"{side} {mode}: median {med[mode]:.1f} s over {len(sel)} runs "
                  f"({', '.join(str(round(r['execution_time_s'], 1)) for r in sel)}); threads "
                  f"{[r['n_threads'] for r in sel]}; timed out {sum(bool(r['timed_out']) for r in sel)}; other cores "
                  f"busy {[r['other_cores_busy'] for r in sel]}")
        print(f"{side} slowdown (contended / quiet median): x{med['contended'] / med['quiet']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
