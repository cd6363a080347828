"""The plugin's options, defined once (OPTIONS): each is a command-line flag with the `--research-` prefix and an
ini key of the same meaning (`research_*`, in pytest.ini / tox.ini / `[tool.pytest.ini_options]`), checked once into
HarnessOptions (run/context.py) with one clear message per user error (shown as a usage error, exit status 4).

Precedence, highest first: a bench's `@pytest.mark.research(...)` marker (per-bench keys only, see MARKER_KEYS)
> the command line > the ini file > the default.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:       # imported where used: this module is loaded by the pytest11 entry point, in every run
    from ..run.context import HarnessOptions

PREFIX = "research"


@dataclass(frozen=True)
class Option:
    """One option: `--research-<flag>` on the command line, `research_<key>` in the ini file."""
    key: str                 # attribute/ini suffix, e.g. "rounds"
    metavar: str | None      # None: a boolean switch
    help: str
    multiple: bool = False   # repeatable on the command line, a list (one per line or comma-separated) in ini
    optional_value: bool = False   # `--research-compare` alone means "the default baseline"

    @property
    def flag(self) -> str:
        return f"--{PREFIX}-{self.key.replace('_', '-')}"

    @property
    def dest(self) -> str:
        return f"{PREFIX}_{self.key}"

    ini = dest


OPTIONS: tuple[Option, ...] = (
    Option("profile", "NAME", "run bench instances of these profiles only (repeat or comma-separate; default: all)",
           multiple=True),
    Option("profiles_file", "PATH", "a TOML file overlaying the built-in profiles (default: "
                                    "$RESEARCH_BENCH_PROFILES)"),
    Option("machine_class", "CLASS", "take budgets for this machine class instead of the detected one"),
    Option("budget_scale", "FACTOR", "multiply every time budget by FACTOR (default 1)"),
    Option("results_dir", "DIR", "where result records are appended (default: $RESEARCH_BENCH_RESULTS_DIR or "
                                 "<rootdir>/results)"),
    Option("rounds", "N", "measured runs per pipeline bench (default 1); verdicts and summaries use the median"),
    Option("warmup_runs", "N", "warm-up runs before the measured ones, recorded as such and excluded (default: 1 "
                               "when rounds > 1, else 0)"),
    Option("compare", "REF", "compare with the stored results of REF: a name saved with --research-save, a git "
                             "ref or a stored commit (default: the latest other commit measured on this machine); "
                             "write --research-compare=REF", optional_value=True),
    Option("compare_fail", "METRIC:PCT", "fail the session when METRIC got worse than the baseline by more than PCT "
                                         "and the change is distinguishable from noise, e.g. execution_time_s:10%% "
                                         "(implies compare)", multiple=True),
    Option("summary_md", "FILE", "write a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when set)"),
    Option("memray", None, "record each run's allocations with memray (capture under the results dir)"),
    Option("isolate", None, "run each pipeline run in a child process: a crash or OOM kill is recorded, the session "
                            "goes on"),
    Option("enforce_memory", None, "with isolate: kill a run whose process tree goes over the profile's memory limit"),
    Option("backend", "NAME", "backend of pipeline benches (default llamacpp, the embedded one; "
                              "`research-engine run --help` lists the others)"),
    Option("corpus", "PATH", "corpus of pipeline benches (default: the engine's PubMedQA corpus)"),
    Option("save", "NAME", "name this session's runs (stored in each record): compare with "
                           "--research-compare=NAME or `research-bench compare NAME HEAD`"),
    Option("json", "FILE", "write this session's records and summary as one JSON file (like --benchmark-json)"),
    Option("commit_url", "TEMPLATE", "link commits in summaries and reports, e.g. "
                                     "https://github.com/ORG/REPO/commit/{commit} (default: "
                                     "$RESEARCH_BENCH_COMMIT_URL, else derived from the git remote)"),
    Option("remeasure", "N", "measure a run again, up to N more times, when other processes kept a real share of "
                             "the CPUs busy during it (each attempt is stored, flagged; default 2; 0: never)"),
    Option("unverified", "fail|pass", "a time-budget miss seen only on a busy machine (every run contended) is "
                                      "UNVERIFIED: pass (default) reports it without failing, fail fails the session"),
)
BY_KEY = {o.key: o for o in OPTIONS}

#: Keys a bench's own `@pytest.mark.research(...)` may set (they concern one bench's runs, not the session).
MARKER_KEYS = ("rounds", "warmup_runs", "isolate", "enforce_memory", "backend", "corpus", "budget_scale", "memray",
               "remeasure")


class OptionError(ValueError):
    """A harness option is wrong; the message says which and how to fix it (the plugin shows it as a usage
    error, exit status 4)."""


def register(parser: Any) -> None:
    """Register every option with pytest: a flag in group 'research-bench' and an ini key."""
    g = parser.getgroup("research-bench", "research bench (llm-research-bench harness)")
    for o in OPTIONS:
        kw: dict[str, Any] = {"dest": o.dest, "help": o.help}
        if o.metavar is None:
            kw.update(action="store_true", default=None)
        else:
            kw["metavar"] = o.metavar
            if o.multiple:
                kw["action"] = "append"
            if o.optional_value:
                kw.update(nargs="?", const="", default=None)
        g.addoption(o.flag, **kw)
        # Switches are read as strings so that a bad value gets this plugin's message, naming the key.
        ini_type = "linelist" if o.multiple else "string"
        kind = " (true/false)" if o.metavar is None else ""
        parser.addini(o.ini, f"{o.help.replace('%%', '%')}{kind} (command line: {o.flag})", type=ini_type,
                      default=None)


def settings(cli: Callable[[str], Any], ini: Callable[[str], Any]) -> dict[str, Any]:
    """Option key -> raw value with command line over ini (None where neither sets it)."""
    out: dict[str, Any] = {}
    for o in OPTIONS:
        v = cli(o.dest)
        if v is None or (o.multiple and not v):
            try:
                iv = ini(o.ini)
            except (ValueError, KeyError):
                iv = None
            if iv in ("", []):
                iv = None
            v = iv
        out[o.key] = v
    return out


def where(key: str) -> str:
    """How a user names an option in a message: '--research-rounds (ini research_rounds)'."""
    o = BY_KEY[key]
    return f"{o.flag} (ini {o.ini})"


def _split(values: Any) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out = []
    for v in values:
        out += [x.strip() for x in str(v).split(",") if x.strip()]
    return out


def _number(key: str, v: Any, *, integer: bool, minimum: float, above: bool = False) -> Any:
    if v is None:
        return None
    try:
        x = int(str(v).strip()) if integer else float(str(v).strip())
    except ValueError:
        raise OptionError(f"{where(key)}: expected {'a whole number' if integer else 'a number'}, got {v!r}") from None
    if not integer and not math.isfinite(x):
        raise OptionError(f"{where(key)}: must be a finite number, got {v!r}")
    if (x <= minimum) if above else (x < minimum):
        raise OptionError(f"{where(key)}: must be {'above' if above else 'at least'} {minimum:g}, got {v!r}")
    return x


def _flag(key: str, v: Any) -> bool:
    if v is None or isinstance(v, bool):
        return bool(v)
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off", ""):
        return False
    raise OptionError(f"{where(key)}: expected true or false, got {v!r}")


def load_profiles(profiles_file: str | None) -> dict[str, Any]:
    from llm_research_bench.engine.profiles import ProfileError, load_profiles as _load
    try:
        return _load(profiles_file)
    except ProfileError as e:
        named = profiles_file and e.file is not None and str(e.file) == str(profiles_file)
        raise OptionError(f"{where('profiles_file') if named else 'profiles'}: {e}") from None


def parse_options(values: dict[str, Any], rootpath: Path) -> HarnessOptions:
    """Build HarnessOptions from raw option values (`settings(...)`), checking each."""
    from llm_research_bench.engine.backends import BACKEND_NAMES
    from llm_research_bench.engine.envvars import env

    from ..analysis.gate import DEFAULT_UNVERIFIED, UNVERIFIED_POLICIES
    from ..analysis.thresholds import parse_threshold
    from ..run.context import HarnessOptions

    get = values.get
    profiles_file = get("profiles_file") or env("PROFILES") or None
    profiles = load_profiles(profiles_file)
    selected = _split(get("profile")) or None
    if selected:
        unknown = [p for p in selected if p not in profiles]
        if unknown:
            raise OptionError(f"{where('profile')}: unknown profile '{unknown[0]}'; known: {', '.join(profiles)}"
                              + ("" if profiles_file else " (add profiles with --research-profiles-file)"))

    mc = get("machine_class") or None
    if mc:
        known = sorted({c for p in profiles.values() for c in p.budgets})
        if mc not in known:
            raise OptionError(f"{where('machine_class')}: no profile has a budget for '{mc}'; classes with budgets: "
                              f"{', '.join(known)}")

    scale = _number("budget_scale", get("budget_scale"), integer=False, minimum=0, above=True)
    scale = 1.0 if scale is None else scale
    rounds = _number("rounds", get("rounds"), integer=True, minimum=1)
    rounds = 1 if rounds is None else rounds
    warm = _number("warmup_runs", get("warmup_runs"), integer=True, minimum=0)
    warm = (1 if rounds > 1 else 0) if warm is None else warm

    rd = get("results_dir") or env("RESULTS_DIR") or None
    results_dir = Path(rd) if rd else rootpath / "results"
    if not results_dir.is_absolute():
        results_dir = Path.cwd() / results_dir
    if results_dir.exists() and not results_dir.is_dir():
        raise OptionError(f"{where('results_dir')}: {results_dir} exists and is not a folder")

    thresholds = []
    for spec in _split(get("compare_fail")):
        try:
            thresholds.append(parse_threshold(spec))
        except ValueError as e:
            raise OptionError(f"{where('compare_fail')}: {e}") from None
    compare = get("compare")
    if thresholds and compare is None:
        compare = ""                         # compare_fail implies compare (default baseline)
    compare_commit = compare_name = None
    if compare:
        if saved_name_exists(compare, results_dir):
            compare_name = compare
        else:
            compare_commit = resolve_compare_ref(compare, rootpath, results_dir)

    memray = _flag("memray", get("memray"))
    if memray:
        try:
            import memray as _m  # noqa: F401
        except ImportError:
            raise OptionError(f"{where('memray')}: memray is not installed (pip install memray; not available on "
                              f"Windows)") from None
    backend = get("backend") or "llamacpp"
    if backend not in BACKEND_NAMES:
        raise OptionError(f"{where('backend')}: unknown backend '{backend}'; use {' or '.join(BACKEND_NAMES)}")
    corpus = get("corpus") or None
    if corpus and not Path(corpus).exists():
        raise OptionError(f"{where('corpus')}: {corpus} not found (a folder with passages.jsonl, or PubMedQA's "
                          f"ori_pqal.json)")
    remeasure = _number("remeasure", get("remeasure"), integer=True, minimum=0)
    remeasure = HarnessOptions.remeasure if remeasure is None else remeasure
    unverified = str(get("unverified") or DEFAULT_UNVERIFIED).strip().lower()
    if unverified not in UNVERIFIED_POLICIES:
        raise OptionError(f"{where('unverified')}: expected {' or '.join(UNVERIFIED_POLICIES)}, got "
                          f"{get('unverified')!r}")
    md = get("summary_md") or None
    if md:
        from llm_research_bench.engine.atomic import check_writable
        try:
            check_writable(md, example="summary.md")
        except OSError as e:
            raise OptionError(f"{where('summary_md')}: {e}") from None
    isolate = _flag("isolate", get("isolate"))
    enforce = _flag("enforce_memory", get("enforce_memory"))
    if enforce and not isolate:
        raise OptionError(f"{where('enforce_memory')} kills an isolated run that goes over its memory limit: add "
                          f"{BY_KEY['isolate'].flag}")
    return HarnessOptions(profiles=profiles, selected=selected, profiles_file=profiles_file, machine_class=mc,
                          budget_scale=float(scale), results_dir=results_dir, rounds=rounds, warmup_runs=warm,
                          compare=compare, compare_commit=compare_commit, compare_name=compare_name,
                          compare_fail=thresholds,
                          summary_md=Path(md) if md else None, memray=memray, isolate=isolate,
                          enforce_memory=enforce, backend=backend, corpus=corpus,
                          save=(get("save") or "").strip() or None,
                          json_path=Path(get("json")) if get("json") else None,
                          commit_url=get("commit_url") or env("COMMIT_URL") or None, remeasure=remeasure,
                          unverified=unverified)


def marker_overrides(marker: Any, where_: str) -> dict[str, Any]:
    """A bench's `@pytest.mark.research(key=value, ...)` as checked overrides of HarnessOptions fields."""
    if marker is None:
        return {}
    from llm_research_bench.engine.backends import BACKEND_NAMES
    if marker.args:
        raise OptionError(f"{where_}: @pytest.mark.research takes keyword arguments only, e.g. "
                          f"@pytest.mark.research(rounds=3)")
    unknown = sorted(set(marker.kwargs) - set(MARKER_KEYS))
    if unknown:
        raise OptionError(f"{where_}: @pytest.mark.research does not take '{unknown[0]}'; a bench may set "
                          f"{', '.join(MARKER_KEYS)}")
    out: dict[str, Any] = {}
    kw = marker.kwargs
    try:
        if "rounds" in kw:
            out["rounds"] = _number("rounds", kw["rounds"], integer=True, minimum=1)
            out.setdefault("warmup_runs", 1 if out["rounds"] > 1 else 0)
        if "warmup_runs" in kw:
            out["warmup_runs"] = _number("warmup_runs", kw["warmup_runs"], integer=True, minimum=0)
        if "remeasure" in kw:
            out["remeasure"] = _number("remeasure", kw["remeasure"], integer=True, minimum=0)
        if "budget_scale" in kw:
            out["budget_scale"] = _number("budget_scale", kw["budget_scale"], integer=False, minimum=0, above=True)
        for k in ("isolate", "enforce_memory", "memray"):
            if k in kw:
                out[k] = _flag(k, kw[k])
        if "backend" in kw:
            if kw["backend"] not in BACKEND_NAMES:
                raise OptionError(f"unknown backend {kw['backend']!r}; use {' or '.join(BACKEND_NAMES)}")
            out["backend"] = kw["backend"]
        if "corpus" in kw:
            if not Path(str(kw["corpus"])).exists():
                raise OptionError(f"corpus {kw['corpus']} not found")
            out["corpus"] = str(kw["corpus"])
    except OptionError as e:
        raise OptionError(f"{where_}: @pytest.mark.research: {e}") from None
    return out


def saved_name_exists(name: str, results_dir: Path) -> bool:
    """Whether a session on this machine was saved under `name` (--research-save)."""
    from ..analysis.baseline import saved_as
    from ..run import environment
    from ..run.store import read_store
    fp = environment.machine_info().fingerprint
    return any(saved_as(r) == name for r in read_store(results_dir, fingerprint=fp).records)


def resolve_compare_ref(ref: str, rootpath: Path, results_dir: Path) -> str:
    """A compare REF as a commit: git's view first, then a commit prefix stored under results_dir."""
    from ..run import environment
    commit = environment.resolve_ref(ref, rootpath)
    if commit:
        return commit
    from ..run.store import read_store
    fp = environment.machine_info().fingerprint
    for rec in read_store(results_dir, fingerprint=fp, commit=ref).records:   # skips are said at the end
        if rec.commit:
            return rec.commit
    if Path(ref).exists():
        raise OptionError(f"{where('compare')} took '{ref}' as its REF, but it is a path: write "
                          f"--research-compare=REF, or put it after the paths")
    raise OptionError(f"--research-compare={ref} (ini research_compare): no session on this machine was saved "
                      f"under this name (--research-save), git does not know this ref, and {results_dir} has no "
                      f"results of a commit starting with it on this machine")
