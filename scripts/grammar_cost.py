"""The output grammar's sampling cost per generated token on the embedded model, call by call.

    PYTHONPATH=. .venv/bin/python scripts/grammar_cost.py [--rounds 2]

One prompt (two short passages about pytest-timeout), four formats: none, abstractive claims, extractive claims,
an open answer (engine.grammar). Per call: wall seconds, llama.cpp's native decode and prompt-eval seconds, and
what is left per token (sampling and streaming: the grammar's cost shows there, since llama.cpp's decode timer
leaves sampling out), with the greedy-first sampler's counts (whole-vocabulary passes, top-64 passes, steps).
"""
from __future__ import annotations

import argparse
import sys
import time

from engine.backends.base import Message
from engine.backends.llamacpp import LlamaCppBackend
from engine.grammar import answer_format, claims_format

PASSAGES = {1: "pytest-timeout aborts tests that run longer than a given number of seconds. It can use a signal or a "
               "thread method to do so in the end.",
            2: "The timeout can be set per test with a marker, and also on the command line with an option."}
PROMPT = ("Question: What does pytest-timeout do?\n\nEvidence passages:\n"
          + "\n".join(f"[{n}] {t}" for n, t in PASSAGES.items())
          + "\n\nTask: write up to 3 short factual claims. One claim per line, ending with [n].")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args(argv)
    b = LlamaCppBackend("smollm2-135m", context_window=2048)
    formats = [("none", None), ("abstractive", claims_format([1, 2], 3)),
               ("extractive", claims_format([1, 2], 3, "extractive", PASSAGES)),
               ("answer", answer_format([1, 2], polar=False))]
    print(f"{'format':12s} {'wall s':>7s} {'decode s':>8s} {'tok':>4s} {'other ms/tok':>12s} "
          f"passes (full, top-64, steps)")
    for _ in range(a.rounds):
        for name, fmt in formats:
            t0 = time.perf_counter()
            "".join(b.stream([Message("user", PROMPT)], max_tokens=60, prefill="- ", output_format=fmt))
            wall = time.perf_counter() - t0
            s = b.last_stats
            other = (wall - (s.native_decode_s or 0) - (s.native_prompt_eval_s or 0)) / max(1, s.tokens_generated)
            print(f"{name:12s} {wall:7.2f} {s.native_decode_s or 0:8.2f} {s.tokens_generated:4d} {other * 1000:12.1f} "
                  f"{getattr(b, 'grammar_passes', None) if fmt else '-'}")
    b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
