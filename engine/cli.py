"""Command line: `research-engine run|profiles|system|validate|calibrate` (also `python -m llm_research_bench.engine`,
and `python -m engine` in a checkout). `--profiles-file F` may come before or after the command."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tabulate import tabulate

from .backends import BACKEND_NAMES


class _Progress:
    """Live display on stderr: phase, batch, tokens/s; claims printed as they are parsed."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.t0 = time.perf_counter()
        self.phase = "plan"
        self.batch = None
        self.call_chunks = 0
        self.call_t0 = 0.0
        self.claims = 0

    def _status(self, extra: str = "") -> None:
        if self.quiet:
            return
        el = time.perf_counter() - self.t0
        b = f" batch {self.batch}" if self.batch is not None else ""
        sys.stderr.write(f"\r\033[K[{el:5.1f}s] {self.phase}{b}{extra}")
        sys.stderr.flush()

    def __call__(self, kind: str, data: dict) -> None:
        if kind == "phase":
            self.phase = data["phase"]
            self.batch = data.get("batch")
            self.call_chunks, self.call_t0 = 0, time.perf_counter()
            self._status()
        elif kind == "retrieved":
            self._status(f" | retrieved {data['hits']} passages (index {'cached' if data['cache_hit'] else 'built'})")
        elif kind == "batch":
            self.batch = data["batch"]
            self._status(f" | {data['size']} passages, novelty {data['novelty']:.2f}"
                         f"{'' if data['admitted'] else ' -> below threshold, stopping'}")
        elif kind == "claim":
            c = data["claim"]
            self.claims += 1
            cites = " ".join(f"[{x.raw}]{'' if x.valid else '(invalid)'}" for x in c.citations) or "(no citation)"
            if not self.quiet:
                sys.stderr.write("\r\033[K")
            print(f"  claim {self.claims}: {c.text} {cites}", flush=True)
        elif kind in ("answer_delta",):
            self.call_chunks += 1
            rate = self.call_chunks / max(1e-6, time.perf_counter() - self.call_t0)
            self._status(f" | {rate:.0f} chunks/s")
        elif kind == "batch_done":
            call = data["call"]          # the batch's CallRecord (engine.runlog)
            ntok, e2e, ttft = call.tokens_generated, call.e2e_s, call.ttft_s or 0
            rate = (ntok - 1) / (e2e - ttft) if ntok > 1 and e2e > ttft else 0.0
            self._status(f" | {ntok} tokens, {rate:.0f} tok/s")

    def done(self) -> None:
        if not self.quiet:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _cmd_run(a: argparse.Namespace) -> int:
    from . import research
    progress = _Progress(quiet=a.quiet or not sys.stderr.isatty())
    session = research(a.question, profile=a.profile, backend=a.backend, model=a.model, corpus=a.corpus,
                       profiles_file=a.profiles_file, early_exit=not a.no_early_exit, retrieval=not a.closed_book,
                       store_text=a.store_text, telemetry_out=a.telemetry_out, on_event=progress,
                       memory_trace=a.memory_trace)
    progress.done()
    tel = session.telemetry
    m = tel["metrics"]
    print("\nAnswer:")
    print("\n".join(f"  {line}" for line in session.answer.splitlines()))
    cited = session.cited_sources()
    if cited:
        print("\nSources:")
        for label, pid in cited:
            p = session.passages.get(pid)
            title = f" ({p.title})" if p and p.title else ""
            print(f"  [{label}] {pid}{title}")
    ee = tel["early_exit"]
    print(f"\n{tel['profile']['name']} on {tel['backend']}/{tel['model']['name']}: {m['execution_time_s']:.1f} s, "
          f"{m['tokens_generated']} tokens, decode {m['decode_tokens_per_second'] or 0:.0f} tok/s, "
          f"TTFT {m['ttft_s'] or 0:.2f} s, peak {m['memory_peak_mb'] or 0:.0f} MB, {m['claims']} claims, "
          f"{m['valid_citations']}/{m['citations']} citations valid, stop: {ee['reason']}")
    if a.telemetry_out:
        print(f"telemetry: {a.telemetry_out}")
    if a.memory_trace:
        print(f"memory trace: {a.memory_trace} ({m['memory_samples']} samples, peak {m['memory_peak_mb'] or 0:.0f} MB)")
    return 0


def _cmd_profiles(a: argparse.Namespace) -> int:
    from .profiles import load_profiles
    from .system import current_machine_class
    cls = a.machine_class or current_machine_class()
    rows = []
    for p in load_profiles(a.profiles_file).values():
        b = p.budget_for(cls)
        rows.append([p.name, f"{b.time_lower_s:g}-{b.time_upper_s:g} s{' (ref)' if b.is_reference_fallback else ''}",
                     p.context_window, f"{b.memory_mb:g}", p.batch_size, p.ef_search, p.max_tokens, p.timeout_s,
                     p.novelty_threshold, p.models.get("llamacpp"), p.models.get("ollama")])
    print(f"machine class: {cls}")
    print(tabulate(rows, headers=["profile", "time budget", "context", "memory MB", "batch", "ef_search",
                                  "max_tokens", "timeout s", "novelty", "llamacpp model", "ollama model"]))
    return 0


def _cmd_system(a: argparse.Namespace) -> int:
    from .system import detect
    info = detect().as_dict()
    if a.json:
        print(json.dumps(info, indent=2))
        return 0
    rows = []
    for k, v in info.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                rows.append([f"{k}.{k2}", v2])
        else:
            rows.append([k, v])
    print(tabulate(rows, headers=["what", "value"]))
    return 0


def _cmd_validate(a: argparse.Namespace) -> int:
    from .telemetry import validation_errors
    try:
        doc = json.loads(Path(a.file).read_text())
    except (OSError, json.JSONDecodeError) as e:
        print(f"error: {a.file}: {e}", file=sys.stderr)
        return 2
    errs = validation_errors(doc)
    for e in errs:
        print(f"{a.file}: {e}", file=sys.stderr)
    if not errs:
        print(f"{a.file}: valid (schema_version {doc.get('schema_version')})")
    return 1 if errs else 0


def _cmd_calibrate(a: argparse.Namespace) -> int:
    """Measure a machine class's budget: median of N warm runs; lower = 0.5 x median, upper = 2 x median
    rounded up to 5 s (the rule engine/profiles.toml documents)."""
    import math
    import statistics
    from . import research
    from .system import current_machine_class
    q = a.question
    research(q, profile=a.profile, corpus=a.corpus, profiles_file=a.profiles_file)   # warm-up: index, page cache
    times, peaks = [], []
    for i in range(a.runs):
        t = research(q, profile=a.profile, corpus=a.corpus, profiles_file=a.profiles_file).telemetry["metrics"]
        times.append(t["execution_time_s"])
        peaks.append(t["memory_peak_mb"])
        print(f"run {i + 1}: {t['execution_time_s']:.1f} s, peak {t['memory_peak_mb']:.0f} MB", file=sys.stderr)
    med = statistics.median(times)
    print(f"[profiles.{a.profile}.budgets.{current_machine_class()}]  # median {med:.1f} s of {a.runs} runs, "
          f"peak median {statistics.median(peaks):.0f} MB")
    print(f"time_s = [{med * 0.5:.0f}, {5 * math.ceil(med * 2 / 5):.0f}]")
    return 0


DEFAULT_Q = "Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="research-engine", description="Streaming local-LLM research engine.")
    from llm_research_bench import __version__
    ap.add_argument("--version", action="version", version=f"research-engine (llm-research-bench) {__version__}")
    profiles_help = "TOML file overlaying the built-in profiles (default: $RESEARCH_BENCH_PROFILES)"
    ap.add_argument("--profiles-file", default=None, help=profiles_help)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="research a question")
    r.add_argument("question")
    r.add_argument("--profile", default="quick")
    r.add_argument("--backend", default="llamacpp", choices=list(BACKEND_NAMES))
    r.add_argument("--model", default=None, help="registry name (smollm2-135m, gemma3-270m), .gguf path or Ollama tag")
    r.add_argument("--corpus", default=None, help="folder with passages.jsonl, or PubMedQA ori_pqal.json")
    r.add_argument("--telemetry-out", default=None)
    r.add_argument("--store-text", action="store_true", help="keep question and answer text in telemetry (redacted)")
    r.add_argument("--no-early-exit", action="store_true")
    r.add_argument("--closed-book", action="store_true", help="no retrieval: the model answers alone")
    r.add_argument("--memory-trace", default=None, metavar="FILE",
                   help="write the memory sampler's trace (process-tree RSS over the run, ~50 Hz) as JSON")
    r.add_argument("--quiet", action="store_true")
    p = sub.add_parser("profiles", help="list profiles and this machine's budgets")
    p.add_argument("--machine-class", default=None)
    s = sub.add_parser("system", help="what this machine has")
    s.add_argument("--json", action="store_true")
    v = sub.add_parser("validate", help="validate a telemetry file against the schema")
    v.add_argument("file")
    c = sub.add_parser("calibrate", help="measure this machine's time budget for a profile")
    c.add_argument("--profile", default="quick")
    c.add_argument("--runs", type=int, default=5)
    c.add_argument("--corpus", default=None)
    c.add_argument("--question", default=DEFAULT_Q)
    for sp in (r, p, c):      # also after the command, as the README writes it (the later one wins)
        sp.add_argument("--profiles-file", default=argparse.SUPPRESS, help=profiles_help)
    a = ap.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from .errors import USER_ERRORS
    try:
        return {"run": _cmd_run, "profiles": _cmd_profiles, "system": _cmd_system, "validate": _cmd_validate,
                "calibrate": _cmd_calibrate}[a.cmd](a)
    except USER_ERRORS as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
