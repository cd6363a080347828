"""Command line: `research-engine run|profiles|system|validate|calibrate` (also `python -m llm_research_bench.engine`,
and `python -m engine` in a checkout). `--profiles-file F` may come before or after the command.

Every way a command can end is one line on stderr and a documented exit status (EXIT_*): no traceback for any
input. A run's work is never lost to its end: the answer is printed and the telemetry written (or written to a
fallback file the message names); Ctrl-C and SIGTERM store the partial telemetry, marked (success false, the
signal in `errors`), before exiting 130 / 143.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tabulate import tabulate

from .backends import BACKEND_NAMES
from .deadline import RunTimeout, Terminated, stopping_signals
from .synthesis import CALIBRATIONS


EXIT_OK = 0
EXIT_INVALID = 1        # validate: the document breaks the schema
EXIT_USAGE = 2          # a user error (option, profile, corpus, question, model, server, output path, failed run)
EXIT_INTERNAL = 3       # an unexpected error: a bug (RESEARCH_BENCH_DEBUG=1 shows its traceback)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143   # SIGTERM (128 + SIGTERM)
DEBUG_ENV = "RESEARCH_BENCH_DEBUG"
MAX_VALIDATE_BYTES = 64 << 20


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


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
    try:
        session = research(a.question, profile=a.profile, backend=a.backend, model=a.model, corpus=a.corpus,
                           profiles_file=a.profiles_file, early_exit=not a.no_early_exit,
                           retrieval=not a.closed_book,
                           strategy="single_shot" if a.single_shot else "progressive", answer_type=a.answer_type,
                           decision_calibration=a.decision_calibration,
                           store_text=a.store_text, telemetry_out=a.telemetry_out,
                           on_event=progress, memory_trace=a.memory_trace)
    finally:
        progress.done()          # clear the status line, so that any message below stands on its own line
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
    ans = tel["answer"]
    if ans["decision"] is not None:
        how = ans["decision_method"].replace("_", " ")
        probs = ans.get("decision_probabilities")
        shown = (", " + ", ".join(f"{k} {v:.2f}" for k, v in probs.items())) if probs else ""
        print(f"\nDecision: {ans['decision']} (by {how}{shown})")
    elif tel["question"].get("answer_type") == "polar":
        print("\nDecision: none could be parsed from the answer")
    ee = tel["early_exit"]
    g = m["grounded_citation_rate"]
    grounded = (f"{m['grounded_citations']}/{m['citations'] + m['answer_citations']} citations grounded"
                if g is not None else "no citation")
    print(f"\n{tel['profile']['name']} on {tel['backend']}/{tel['model']['name']}: {m['execution_time_s']:.1f} s, "
          f"{m['tokens_generated']} tokens, decode {m['decode_tokens_per_second'] or 0:.0f} tok/s, "
          f"TTFT {m['ttft_s'] or 0:.2f} s, peak {m['memory_peak_mb'] or 0:.0f} MB, {m['claims']} claims, "
          f"{m['valid_citations']}/{m['citations']} citations valid, {grounded}, stop: {ee['reason']}")
    written = session.telemetry_written
    if written is not None and written.note:
        print(f"error: {written.note}", file=sys.stderr)
        return EXIT_USAGE
    if written is not None:
        print(f"telemetry: {written.path}")
    if a.memory_trace:
        print(f"memory trace: {a.memory_trace} ({m['memory_samples']} samples, peak {m['memory_peak_mb'] or 0:.0f} MB)")
    return EXIT_OK


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
    from .atomic import read_regular
    from .telemetry import validation_errors
    fix = "give a telemetry JSON file (as written by `run --telemetry-out`)"
    try:
        doc = json.loads(read_regular(a.file, max_bytes=MAX_VALIDATE_BYTES).decode("utf-8"))
    except UnicodeDecodeError as e:
        print(f"error: {a.file}: not UTF-8 JSON text ({e.reason} at byte {e.start}): {fix}", file=sys.stderr)
        return EXIT_USAGE
    except json.JSONDecodeError as e:
        print(f"error: {a.file}: not JSON (line {e.lineno}, column {e.colno}: {e.msg}): {fix}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        why = e.strerror if e.strerror else _one_line(e).replace(f"{a.file} ", "", 1)
        print(f"error: {a.file}: cannot be read ({why}): {fix}", file=sys.stderr)
        return EXIT_USAGE
    errs = validation_errors(doc)
    for e in errs:
        print(f"{a.file}: {e}", file=sys.stderr)
    if not errs:
        print(f"{a.file}: valid (schema_version {doc.get('schema_version')})")
    return EXIT_INVALID if errs else EXIT_OK


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
    r.add_argument("--single-shot", action="store_true",
                   help="plain RAG: the top passages that fit the context, one prompt, one answer")
    r.add_argument("--answer-type", default="auto", choices=["auto", "polar", "open"],
                   help="polar: a yes/no/maybe decision; open: a few sentences with citations; auto: detect")
    r.add_argument("--decision-calibration", default="relative", choices=list(CALIBRATIONS),
                   help="how a polar decision's token probabilities are calibrated (docs/engine.md): relative "
                        "(remove the label bias the research conversation adds to the closed-book prompt's), "
                        "content_free (by the same conversation without its content) or none")
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
    for sp in (r, p, c):      # also after the command (the later one wins)
        sp.add_argument("--profiles-file", default=argparse.SUPPRESS, help=profiles_help)
    a = ap.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cmd = {"run": _cmd_run, "profiles": _cmd_profiles, "system": _cmd_system, "validate": _cmd_validate,
           "calibrate": _cmd_calibrate}[a.cmd]
    with stopping_signals(sigint=True):       # SIGTERM and Ctrl-C stop a run with its telemetry, never swallowed
        return _guarded(cmd, a)


def _kept(exc: BaseException) -> str:
    """What the message says about the telemetry a failed or stopped run kept."""
    from .pipeline import ResearchFailed
    written = exc.telemetry_written if isinstance(exc, ResearchFailed) else getattr(exc, "research_telemetry_written", None)
    if written is None:
        return ""
    if written.note:
        return f"; {written.note}"
    return f"; partial telemetry (success: false) written to {written.path}"


def _unexpected(e: BaseException, kept: str = "") -> int:
    print(f"error: unexpected {type(e).__name__}: {_one_line(e)}{kept} -- this is a bug: please report it "
          f"({DEBUG_ENV}=1 shows the traceback)", file=sys.stderr)
    return EXIT_INTERNAL


def _guarded(cmd, a: argparse.Namespace) -> int:
    """Run a command; every way it can end is one line on stderr and an exit status (EXIT_*)."""
    try:
        return cmd(a)
    except Terminated as e:                  # (a KeyboardInterrupt: caught first)
        print(f"stopped by SIGTERM{_kept(e)}", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt as e:
        print(f"interrupted (Ctrl-C){_kept(e)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RunTimeout as e:                  # the engine stopped the run at its profile's timeout_s
        print(f"error: {_one_line(e)}{_kept(e)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # noqa: BLE001 -- classified below: one line each, never a traceback unless asked for
        from .errors import USER_ERRORS
        from .pipeline import ResearchFailed
        cause = e.__cause__ if isinstance(e, ResearchFailed) else None
        user = isinstance(e, USER_ERRORS) and (cause is None or isinstance(cause, (*USER_ERRORS, OSError,
                                                                                     MemoryError)))
        if user:
            print(f"error: {_one_line(e)}{_kept(e)}", file=sys.stderr)
            return EXIT_USAGE
        if os.environ.get(DEBUG_ENV):        # a bug (also a run that failed on one): its traceback, on request
            raise
        return _unexpected(cause or e, _kept(e))


if __name__ == "__main__":
    sys.exit(main())
