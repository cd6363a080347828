"""Measure TTFT and the time to the first valid claim of research runs, one JSON line per run.

    .venv/bin/python scripts/first_claim_timings.py --profiles quick balanced thorough --runs 5 --out FILE

Uses only the engine's public entry (`engine.research` with its event callback), so the same script measures any
checkout of the engine: run it with that checkout's interpreter. Both times count from the first evidence batch's
generation request (the `phase: streaming_inference, batch 0` event, emitted just before the call): TTFT is the
telemetry's (first request to first streamed chunk); the first valid claim is the first `claim` event whose
citations are all valid (at least one). A fresh backend is loaded per run, so no run reuses another's cache; both
times start after model loading and retrieval, so a first run needs no warm-up.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from engine import research

QUESTION = "Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?"


def one_run(question: str, profile: str, corpus: str | None) -> dict:
    marks: dict[str, float] = {}

    def on_event(kind: str, data: dict) -> None:
        now = time.perf_counter()
        if kind == "phase" and data.get("phase") == "streaming_inference" and "start" not in marks:
            marks["start"] = now
        if kind == "claim" and "first_valid" not in marks:
            c = data["claim"]
            if c.citations and all(x.valid for x in c.citations):
                marks["first_valid"] = now

    s = research(question, profile=profile, corpus=corpus, on_event=on_event, timeout_s=0)   # timed, not gated
    m = s.telemetry["metrics"]
    first = marks["first_valid"] - marks["start"] if "first_valid" in marks and "start" in marks else None
    return {"profile": profile, "ttft_s": m["ttft_s"], "first_valid_claim_s": first,
            "time_to_first_claim_s": m.get("time_to_first_claim_s"), "execution_time_s": m["execution_time_s"],
            "claims": m["claims"], "citation_validity": m["citation_validity"],
            "first_batch_prompt_tokens": s.telemetry["traces"]["calls"][0]["prompt_tokens"],
            "weights": s.telemetry["model"].get("weights")}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profiles", nargs="+", default=["quick"])
    p.add_argument("--runs", type=int, default=5, help="runs per profile (or one count per profile)", nargs="+")
    p.add_argument("--question", default=QUESTION)
    p.add_argument("--corpus", default=None, help="corpus folder or file (default: the engine's PubMedQA)")
    p.add_argument("--out", required=True, help="JSON lines file to append the runs to")
    a = p.parse_args(argv)
    counts = a.runs if len(a.runs) == len(a.profiles) else [a.runs[0]] * len(a.profiles)
    for prof, runs in zip(a.profiles, counts):
        rows = []
        for _ in range(runs):
            row = one_run(a.question, prof, a.corpus)
            rows.append(row)
            with open(a.out, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
        for key in ("ttft_s", "first_valid_claim_s"):
            vals = [r[key] for r in rows if r[key] is not None]
            med = f"{statistics.median(vals):.3f}" if vals else "none"
            print(f"{prof:9s} {key:20s} median {med} s over {len(vals)}/{len(rows)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
