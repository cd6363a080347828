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
from pathlib import Path

from tabulate import tabulate

from .backends import BACKEND_NAMES
from .deadline import RunTimeout, Terminated, stopping_signals
from .synthesis import CALIBRATIONS


EXIT_OK = 0
EXIT_INVALID = 1        # validate: the document breaks the schema
EXIT_USAGE = 2          # a user error (option, profile, corpus, question, model, server, output path, failed run)
EXIT_INTERNAL = 3       # an unexpected error: a bug (RESEARCH_BENCH_DEBUG=1 shows its traceback)
EXIT_UNCITED = 4        # run: finished, but no citation in claims or answer names a passage in context (a warning)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143   # SIGTERM (128 + SIGTERM)
DEBUG_ENV = "RESEARCH_BENCH_DEBUG"
MAX_VALIDATE_BYTES = 64 << 20


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _cmd_run(a: argparse.Namespace) -> int:
    from . import research
    from .console import Progress, output_width, run_report, uncited, wrap
    if a.verbose:
        from .backends.llamacpp import show_native_log
        show_native_log(True)
    progress = Progress(quiet=a.quiet)
    progress.start()
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
    m = session.telemetry["metrics"]
    print("\n".join(run_report(session, output_width())))
    written = session.telemetry_written
    if written is not None and written.note:
        print(f"error: {written.note}", file=sys.stderr)
        return EXIT_USAGE
    if written is not None:
        print(f"telemetry: {written.path}")
    if a.memory_trace:
        print(f"memory trace: {a.memory_trace} ({m['memory_samples']} samples, peak {m['memory_peak_mb'] or 0:.0f} MB)")
    if uncited(session):
        warning = (f"warning: no citation names a passage that was in context ({m['valid_citations']}/"
                   f"{m['citations']} in the claims valid, none in the answer): the answer is not backed by the "
                   f"sources (exit {EXIT_UNCITED})")
        sys.stdout.flush()         # the report first, then the warning, also when both go to one pipe
        print("\n".join(wrap(warning, output_width(sys.stderr), rest="  ")), file=sys.stderr)
        return EXIT_UNCITED
    return EXIT_OK


def _cmd_profiles(a: argparse.Namespace) -> int:
    from .console import output_width, profiles_table
    from .profiles import load_profiles
    from .system import current_machine_class
    cls = a.machine_class or current_machine_class()
    print(f"machine class: {cls}")
    print("\n".join(profiles_table(list(load_profiles(a.profiles_file).values()), cls, output_width())))
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
    r.add_argument("--quiet", action="store_true", help="no progress on stderr")
    r.add_argument("--verbose", action="store_true", help="also show llama.cpp's own log on stderr")
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
