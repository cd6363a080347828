"""The harness's options, checked once with one clear message per user error, and the session-wide context
every bench run shares (profiles, budgets' machine class, where records go, git and machine facts)."""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

from llm_research_bench.harness import PLUGIN_VERSION, environment
from llm_research_bench.harness.budgets import BudgetSpec
from llm_research_bench.harness.compare import Threshold, parse_threshold
from llm_research_bench.harness.store import ResultRecord

BACKENDS = ("llamacpp", "ollama")


class OptionError(ValueError):
    """A harness option is wrong; the message says which and how to fix it (the plugin shows it as a usage
    error, exit status 4)."""


@dataclass
class HarnessOptions:
    profiles: dict[str, Any]                 # every known profile (built-in + user file), name -> Profile
    selected: list[str] | None               # --profile; None = all
    profiles_file: str | None
    machine_class: str | None                # --machine-class override
    budget_scale: float = 1.0
    results_dir: Path = Path("results")
    rounds: int = 1
    warmup_runs: int = 0
    compare: str | None = None               # None: off; "": the default baseline; else a ref
    compare_commit: str | None = None        # the ref resolved to a commit (when given)
    compare_fail: list[Threshold] = field(default_factory=list)
    summary_md: Path | None = None
    memray: bool = False
    isolate: bool = False
    enforce_memory: bool = False
    backend: str = "llamacpp"
    corpus: str | None = None


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
    if backend not in BACKENDS:
        raise OptionError(f"--backend: unknown backend '{backend}'; use {' or '.join(BACKENDS)}")
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
    from llm_research_bench.harness.store import iter_records_where
    fp = environment.machine_info().fingerprint
    for rec in iter_records_where(results_dir, fingerprint=fp, commit=ref, strict_versions=False):
        if rec.commit:
            return rec.commit
    if Path(ref).exists():
        raise OptionError(f"--compare took '{ref}' as its REF, but it is a path: write --compare=REF, or put "
                          f"--compare after the paths")
    raise OptionError(f"--compare={ref}: git does not know this ref and {results_dir} has no results of a commit "
                      f"starting with it on this machine")


def profile_digest(profile: Any) -> str:
    """What a profile asks of a run (everything but its name, description, budgets and source): records with
    the same digest ran the same settings."""
    d = {k: getattr(profile, k) for k in profile.__dataclass_fields__
         if k not in ("name", "description", "budgets", "source")}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class BenchContext:
    """Shared by every bench of a session: built by the plugin, also usable without pytest (scripts)."""
    options: HarnessOptions
    rootpath: Path
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    plugin_version: str = PLUGIN_VERSION
    worker: str | None = None                            # xdist worker id
    records: list[ResultRecord] = field(default_factory=list)   # written by this process, in order

    @cached_property
    def git(self) -> environment.GitInfo:
        return environment.git_info(self.rootpath)

    @cached_property
    def machine(self) -> environment.MachineInfo:
        return environment.machine_info()

    @cached_property
    def detected_machine_class(self) -> str:
        return environment.detected_machine_class()

    @property
    def machine_class(self) -> str:
        return self.options.machine_class or self.detected_machine_class

    def profile(self, name_or_profile: Any) -> Any:
        if not isinstance(name_or_profile, str):
            return name_or_profile
        try:
            return self.options.profiles[name_or_profile]
        except KeyError:
            raise OptionError(f"unknown profile '{name_or_profile}'; known: {', '.join(self.options.profiles)}") \
                from None

    def timeout_for(self, profile: Any) -> float:
        """The per-run timeout: the profile's timeout_s, stretched (never shrunk) by --budget-scale, so a
        machine given more time is not killed at the unscaled limit."""
        return float(self.profile(profile).timeout_s) * max(1.0, self.options.budget_scale)

    def budget(self, profile: Any) -> BudgetSpec:
        return BudgetSpec.from_profile(self.profile(profile), self.machine_class, self.options.budget_scale)
