"""The plugin's options: registered with pytest, then checked once into HarnessOptions (run/context.py), with
one clear message per user error (the plugin shows it as a usage error, exit status 4)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from llm_research_bench.engine.backends import BACKEND_NAMES

from ..analysis.thresholds import parse_threshold
from ..run import environment
from ..run.context import HarnessOptions


def register(parser: Any) -> None:
    """Register the plugin's options with pytest (group 'research-bench')."""
    g = parser.getgroup("research-bench", "research bench (llm-research-bench harness)")
    g.addoption("--profile", action="append", dest="research_profile", metavar="NAME",
                help="run bench instances of these profiles only (repeat or comma-separate; default: all)")
    g.addoption("--profiles-file", dest="research_profiles_file", metavar="PATH",
                help="a TOML file overlaying the built-in profiles (default: $RESEARCH_PROFILES)")
    g.addoption("--machine-class", dest="research_machine_class", metavar="CLASS",
                help="take budgets for this machine class instead of the detected one")
    g.addoption("--budget-scale", dest="research_budget_scale", type=float, metavar="FACTOR",
                help="multiply every time budget by FACTOR (default 1)")
    g.addoption("--results-dir", dest="research_results_dir", metavar="DIR",
                help="where result records are appended (default: <rootdir>/results)")
    g.addoption("--rounds", dest="research_rounds", type=int, metavar="N",
                help="measured runs per pipeline bench (default 1); summaries use median and IQR")
    g.addoption("--warmup-runs", dest="research_warmup_runs", type=int, metavar="N",
                help="warm-up runs before the measured ones, recorded as such and excluded "
                     "(default: 1 when --rounds > 1, else 0)")
    g.addoption("--compare", dest="research_compare", nargs="?", const="", default=None, metavar="REF",
                help="compare with the stored results of REF (default: the latest other commit measured on this "
                     "machine); write --compare=REF")
    g.addoption("--compare-fail", dest="research_compare_fail", action="append", metavar="METRIC:PCT",
                help="fail the session when METRIC got worse than the baseline by more than PCT and the change is "
                     "distinguishable from noise, e.g. execution_time_s:10%% (implies --compare)")
    g.addoption("--summary-md", dest="research_summary_md", metavar="FILE",
                help="write a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when set)")
    g.addoption("--memray", dest="research_memray", action="store_true",
                help="record each run's allocations with memray (capture under the results dir)")
    g.addoption("--isolate", dest="research_isolate", action="store_true",
                help="run each pipeline run in a child process: a crash or OOM kill is recorded, the session "
                     "goes on")
    g.addoption("--enforce-memory", dest="research_enforce_memory", action="store_true",
                help="with --isolate: kill a run whose process tree goes over the profile's memory limit")
    g.addoption("--backend", dest="research_backend", metavar="NAME",
                help="backend of pipeline benches: llamacpp (default, embedded) or ollama")
    g.addoption("--bench-corpus", dest="research_corpus", metavar="PATH",
                help="corpus of pipeline benches (default: the engine's PubMedQA corpus)")



class OptionError(ValueError):
    """A harness option is wrong; the message says which and how to fix it (the plugin shows it as a usage
    error, exit status 4)."""


def _split(values: list[str] | None) -> list[str]:
    out = []
    for v in values or []:
        out += [x.strip() for x in str(v).split(",") if x.strip()]
    return out


def load_profiles(profiles_file: str | None) -> dict[str, Any]:
    from llm_research_bench.engine.profiles import ProfileError, load_profiles as _load
    try:
        return _load(profiles_file)
    except ProfileError as e:
        raise OptionError(f"profiles: {e}") from None


def parse_options(get: Callable[[str], Any], rootpath: Path) -> HarnessOptions:
    """Build HarnessOptions from option values (`get(dest)`), checking each."""
    profiles_file = get("research_profiles_file") or os.environ.get("RESEARCH_PROFILES") or None
    profiles = load_profiles(profiles_file)
    selected = _split(get("research_profile")) or None
    if selected:
        unknown = [p for p in selected if p not in profiles]
        if unknown:
            raise OptionError(f"--profile: unknown profile '{unknown[0]}'; known: {', '.join(profiles)}"
                              + ("" if profiles_file else " (add profiles with --profiles-file or RESEARCH_PROFILES)"))

    mc = get("research_machine_class")
    if mc:
        known = sorted({c for p in profiles.values() for c in p.budgets})
        if mc not in known:
            raise OptionError(f"--machine-class: no profile has a budget for '{mc}'; classes with budgets: "
                              f"{', '.join(known)}")

    scale = get("research_budget_scale")
    scale = 1.0 if scale is None else scale
    if not isinstance(scale, (int, float)) or not scale > 0:
        raise OptionError(f"--budget-scale: must be a number above 0, got {scale!r}")

    rounds = get("research_rounds")
    rounds = 1 if rounds is None else rounds
    if rounds < 1:
        raise OptionError(f"--rounds: must be at least 1, got {rounds}")
    warm = get("research_warmup_runs")
    warm = (1 if rounds > 1 else 0) if warm is None else warm
    if warm < 0:
        raise OptionError(f"--warmup-runs: must be 0 or more, got {warm}")

    rd = get("research_results_dir") or os.environ.get("RESEARCH_BENCH_RESULTS_DIR") or None
    results_dir = Path(rd) if rd else rootpath / "results"
    if not results_dir.is_absolute():
        results_dir = Path.cwd() / results_dir
    if results_dir.exists() and not results_dir.is_dir():
        raise OptionError(f"--results-dir: {results_dir} exists and is not a folder")

    thresholds = []
    for spec in get("research_compare_fail") or []:
        try:
            thresholds.append(parse_threshold(spec))
        except ValueError as e:
            raise OptionError(str(e)) from None
    compare = get("research_compare")
    if thresholds and compare is None:
        compare = ""                         # --compare-fail implies --compare (default baseline)
    compare_commit = None
    if compare:
        compare_commit = resolve_compare_ref(compare, rootpath, results_dir)

    memray = bool(get("research_memray"))
    if memray:
        try:
            import memray as _m  # noqa: F401
        except ImportError:
            raise OptionError("--memray: memray is not installed (pip install memray; not available on "
                              "Windows)") from None
    backend = get("research_backend") or "llamacpp"
    if backend not in BACKEND_NAMES:
        raise OptionError(f"--backend: unknown backend '{backend}'; use {' or '.join(BACKEND_NAMES)}")
    corpus = get("research_corpus")
    if corpus and not Path(corpus).exists():
        raise OptionError(f"--bench-corpus: {corpus} not found (a folder with passages.jsonl, or PubMedQA's "
                          f"ori_pqal.json)")
    md = get("research_summary_md")
    isolate = bool(get("research_isolate"))
    enforce = bool(get("research_enforce_memory"))
    if enforce and not isolate:
        raise OptionError("--enforce-memory kills an isolated run that goes over its memory limit: add --isolate")
    return HarnessOptions(profiles=profiles, selected=selected, profiles_file=profiles_file, machine_class=mc,
                          budget_scale=float(scale), results_dir=results_dir, rounds=rounds, warmup_runs=warm,
                          compare=compare, compare_commit=compare_commit, compare_fail=thresholds,
                          summary_md=Path(md) if md else None, memray=memray, isolate=isolate,
                          enforce_memory=enforce, backend=backend, corpus=corpus)


def resolve_compare_ref(ref: str, rootpath: Path, results_dir: Path) -> str:
    """A --compare REF as a commit: git's view first, then a commit prefix stored under results_dir."""
    commit = environment.resolve_ref(ref, rootpath)
    if commit:
        return commit
    from ..run.store import iter_records_where
    fp = environment.machine_info().fingerprint
    for rec in iter_records_where(results_dir, fingerprint=fp, commit=ref, strict_versions=False):
        if rec.commit:
            return rec.commit
    if Path(ref).exists():
        raise OptionError(f"--compare took '{ref}' as its REF, but it is a path: write --compare=REF, or put "
                          f"--compare after the paths")
    raise OptionError(f"--compare={ref}: git does not know this ref and {results_dir} has no results of a commit "
                      f"starting with it on this machine")


