"""The plugin's options, defined once (OPTIONS): a `--research-` flag, an ini key `research_*` and one check shared
by the command line, the ini file and `@pytest.mark.research(...)`; a wrong value is one OptionError (exit status 4).
Precedence: the marker (MARKER_KEYS only) > command line > ini file > $RESEARCH_BENCH_* > default."""
from __future__ import annotations

import dataclasses
import importlib.util
import math
import re
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:       # imported where used: this module is loaded by the pytest11 entry point, in every run
    from ..run.context import HarnessOptions

PREFIX = "research"


class OptionError(ValueError):
    """A harness option is wrong; the message says which and how to fix it."""


# Checks: a raw value (never None) -> the checked value, None for the default; a ValueError or OSError says why.
def _number(v: Any, *, integer: bool = True, minimum: float = 0, above: bool = False) -> Any:
    try:
        x = int(str(v).strip()) if integer else float(str(v).strip())
    except ValueError:
        raise OptionError(f"expected {'a whole number' if integer else 'a number'}, got {v!r}") from None
    if not integer and not math.isfinite(x):
        raise OptionError(f"must be a finite number, got {v!r}")
    if (x <= minimum) if above else (x < minimum):
        raise OptionError(f"must be {'above' if above else 'at least'} {minimum:g}, got {v!r}")
    return x


def _flag(v: Any) -> bool:
    s = str(v).strip().lower()
    if not isinstance(v, bool) and s not in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
        raise OptionError(f"expected true or false, got {v!r}")
    return s in ("1", "true", "yes", "on")


def _text(v: Any) -> str | None:
    return str(v).strip() or None


def _split(values: Any) -> list[str] | None:
    """Names repeated on the command line, listed in the ini file, and/or comma-separated (None when none)."""
    values = [values] if isinstance(values, str) else values or []
    return [x.strip() for v in values for x in str(v).split(",") if x.strip()] or None


def _memray(v: Any) -> bool:
    if _flag(v) and importlib.util.find_spec("memray") is None:
        raise OptionError("memray is not installed (pip install memray; not available on Windows)")
    return _flag(v)


def _backend(v: Any) -> str | None:
    from llm_research_bench.engine.backends import BACKEND_NAMES
    if v and v not in BACKEND_NAMES:
        raise OptionError(f"unknown backend '{v}'; use {' or '.join(BACKEND_NAMES)}")
    return v or None


def _corpus(v: Any) -> str | None:
    if v and not Path(str(v)).exists():
        raise OptionError(f"{v} not found (a folder with passages.jsonl, or PubMedQA's ori_pqal.json)")
    return str(v) if v else None


def _thresholds(v: Any) -> list:
    from ..analysis.names import parse_threshold
    return [parse_threshold(spec) for spec in _split(v) or ()]


def _writable(v: Any) -> Path | None:
    from llm_research_bench.engine.atomic import check_writable
    return check_writable(v, example="summary.md") if v else None


#: Why a --research-save name may not be a git ref.
HIDES = ("a session saved under it would hide that commit in --research-compare and `research-bench compare`; "
         "choose another name")


def _save_name(v: Any) -> str | None:
    """A --research-save NAME: engine.names' pattern, and not git's HEAD."""
    from llm_research_bench.engine.names import check_name
    name = check_name(str(v), "the name") if str(v) else None
    if name and re.fullmatch(r"(?:[A-Z_]+_)?HEAD", name.upper()):        # HEAD, ORIG_HEAD, head on macOS
        raise ValueError(f"the name '{name}' is git's {name}: {HIDES}")
    return name


def _policy(v: Any) -> str | None:
    from ..analysis.gate import UNVERIFIED_POLICIES
    if str(v).strip().lower() not in UNVERIFIED_POLICIES + ("",):
        raise OptionError(f"expected {' or '.join(UNVERIFIED_POLICIES)}, got {v!r}")
    return str(v).strip().lower() or None


@dataclasses.dataclass(frozen=True)
class Option:
    """One option: `--research-<flag>` on the command line, `research_<key>` in the ini file."""
    key: str                 # attribute/ini suffix, e.g. "rounds"
    metavar: str | None      # None: a boolean switch
    help: str
    check: Callable[[Any], Any] = _text    # the raw value (not None) -> its checked value
    field: str = ""          # its HarnessOptions field (default: the key)
    multiple: bool = False   # repeatable on the command line, a list (one per line or comma-separated) in ini
    optional_value: bool = False   # `--research-compare` alone means "the default baseline"
    marker: bool = False     # a bench's @pytest.mark.research may set it (it concerns one bench's runs)
    env: str | None = None   # the $RESEARCH_BENCH_ variable read when neither the command line nor the ini sets it

    @property
    def flag(self) -> str:
        return f"--{PREFIX}-{self.key.replace('_', '-')}"

    @property
    def dest(self) -> str:
        return f"{PREFIX}_{self.key}"

    ini = dest


OPTIONS: tuple[Option, ...] = (
    Option("profile", "NAME", "run bench instances of these profiles only (repeat or comma-separate; default: all)",
           _split, "selected", multiple=True),
    Option("profiles_file", "PATH", "a TOML file overlaying the built-in profiles (default: $RESEARCH_BENCH_PROFILES)",
           env="PROFILES"),
    Option("machine_class", "CLASS", "take budgets for this machine class instead of the detected one"),
    Option("budget_scale", "FACTOR", "multiply every time budget by FACTOR (default 1)",
           partial(_number, integer=False, above=True), marker=True),
    Option("results_dir", "DIR", "where result records are appended (default: $RESEARCH_BENCH_RESULTS_DIR or "
           "<rootdir>/results)"),
    Option("rounds", "N", "measured runs per pipeline bench (default 1); verdicts and summaries use the median",
           partial(_number, minimum=1), marker=True),
    Option("warmup_runs", "N", "warm-up runs before the measured ones, recorded as such and excluded (default: 1 when "
           "rounds > 1, else 0)", partial(_number), marker=True),
    Option("compare", "REF", "compare with the stored results of REF: a name saved with --research-save, a git ref or "
           "a stored commit (default: the latest other commit measured on this machine); write --research-compare=REF",
           str, optional_value=True),
    Option("compare_fail", "METRIC:PCT", "fail the session when METRIC got worse than the baseline by more than PCT "
           "and the change is distinguishable from noise, e.g. execution_time_s:10%% (implies compare)", _thresholds,
           multiple=True),
    Option("summary_md", "FILE", "write a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when set)",
           _writable),
    Option("memray", None, "record each run's allocations with memray (capture under the results dir)", _memray,
           marker=True),
    Option("isolate", None, "run each pipeline run in a child process: a crash or OOM kill is recorded, the session "
           "goes on", _flag, marker=True),
    Option("enforce_memory", None, "with isolate: kill a run whose process tree goes over the profile's memory limit",
           _flag, marker=True),
    Option("backend", "NAME", "backend of pipeline benches (default llamacpp, the embedded one; `research-engine run "
           "--help` lists the others)", _backend, marker=True),
    Option("corpus", "PATH", "corpus of pipeline benches (default: the engine's PubMedQA corpus)", _corpus,
           marker=True),
    Option("save", "NAME", "name this session's runs (stored in each record): compare with --research-compare=NAME or "
           "`research-bench compare NAME HEAD`; 1-80 letters, digits, '.', '_', '-', not a git ref", _save_name),
    Option("json", "FILE", "write this session's records and summary as one JSON file (like --benchmark-json)",
           lambda v: Path(v) if v else None, "json_path"),
    Option("commit_url", "TEMPLATE", "link commits in summaries and reports, e.g. https://github.com/ORG/REPO/commit/"
           "{commit} (default: $RESEARCH_BENCH_COMMIT_URL, else derived from the git remote)", env="COMMIT_URL"),
    Option("remeasure", "N", "measure a run again, up to N more times, when other processes kept a real share of the "
           "CPUs busy during it (each attempt is stored, flagged; default 2; 0: never)", partial(_number), marker=True),
    Option("unverified", "fail|pass", "a time-budget miss seen only on a busy machine (every run contended) is "
           "UNVERIFIED: pass (default) reports it without failing, fail fails the session", _policy),
)
BY_KEY = {o.key: o for o in OPTIONS}
#: Keys a bench's own `@pytest.mark.research(...)` may set.
MARKER_KEYS = tuple(o.key for o in OPTIONS if o.marker)


def register(parser: Any) -> None:
    """Register every option with pytest: a flag in group 'research-bench' and an ini key."""
    g = parser.getgroup("research-bench", "research bench (llm-research-bench harness)")
    for o in OPTIONS:
        kw: dict[str, Any] = dict(action="store_true") if o.metavar is None else dict(
            metavar=o.metavar, action="append" if o.multiple else "store")
        g.addoption(o.flag, dest=o.dest, help=o.help, default=None, **kw,
                    **(dict(nargs="?", const="") if o.optional_value else {}))
        # Switches are read as strings so that a bad value gets this plugin's message, naming the key.
        kind = " (true/false)" if o.metavar is None else ""
        parser.addini(o.ini, f"{o.help.replace('%%', '%')}{kind} (command line: {o.flag})",
                      type="linelist" if o.multiple else "string", default=None)


def settings(cli: Callable[[str], Any], ini: Callable[[str], Any]) -> dict[str, Any]:
    """Option key -> raw value with command line over ini (None where neither sets it)."""
    out: dict[str, Any] = {}
    for o in OPTIONS:
        v = cli(o.dest)
        if v is None or (o.multiple and not v):
            try:
                v = ini(o.ini) or None
            except (ValueError, KeyError):
                v = None
        out[o.key] = v
    return out


def where(key: str) -> str:
    """How a user names an option in a message: '--research-rounds (ini research_rounds)'."""
    return f"{BY_KEY[key].flag} (ini {BY_KEY[key].ini})"


def checked(key: str, value: Any, named: str | None = None) -> Any:
    """One raw option value through its check (None stays None); an error names the option as `named`."""
    if value is None:
        return None
    try:
        return BY_KEY[key].check(value)
    except (ValueError, OSError) as e:
        raise OptionError(f"{named or where(key)}: {e}") from None


def checked_fields(raw: dict[str, Any], named: Callable[[str], str | None] = lambda key: None) -> dict[str, Any]:
    """HarnessOptions fields of raw option values, each checked, those left to the default (None) omitted;
    a field whose default follows from others set: warm-up runs, 1 when several rounds are measured, else 0."""
    out = {BY_KEY[key].field or key: checked(key, v, named(key)) for key, v in raw.items()}
    out = {name: v for name, v in out.items() if v is not None}
    if out.get("rounds") is not None and out.get("warmup_runs") is None:
        out["warmup_runs"] = 1 if out["rounds"] > 1 else 0
    return out


def load_profiles(profiles_file: str | None) -> dict[str, Any]:
    from llm_research_bench.engine.profiles import ProfileError, load_profiles as _load
    try:
        return _load(profiles_file)
    except ProfileError as e:
        named = profiles_file and e.file is not None and str(e.file) == str(profiles_file)
        raise OptionError(f"{where('profiles_file') if named else 'profiles'}: {e}") from None


def parse_options(values: dict[str, Any], rootpath: Path) -> HarnessOptions:
    """HarnessOptions from raw option values (`settings(...)`), each checked, the variables read where unset."""
    from llm_research_bench.engine.envvars import env

    from ..run.context import HarnessOptions
    from ..run.environment import resolve_ref
    raw = {o.key: (values.get(o.key) or env(o.env) or None) if o.env else values.get(o.key) for o in OPTIONS}
    profiles_file = checked("profiles_file", raw.pop("profiles_file"))
    profiles = load_profiles(profiles_file)           # built-in, overlaid by the profiles file
    selected = checked("profile", raw.pop("profile"))
    unknown = [p for p in selected or () if p not in profiles]
    if unknown:
        raise OptionError(f"{where('profile')}: unknown profile '{unknown[0]}'; known: {', '.join(profiles)}"
                          + ("" if profiles_file else " (add profiles with --research-profiles-file)"))
    mc = checked("machine_class", raw.pop("machine_class"))
    known = sorted({c for p in profiles.values() for c in p.budgets})
    if mc and mc not in known:
        raise OptionError(f"{where('machine_class')}: no profile has a budget for '{mc}'; classes with budgets: "
                          f"{', '.join(known)}")
    fields = dict(profiles=profiles, selected=selected, profiles_file=profiles_file, machine_class=mc,
                  **checked_fields({key: v for key, v in raw.items() if key not in ("results_dir", "compare")}))
    fields.update(_compare_fields(raw, fields.get("compare_fail"), rootpath))
    if fields.get("save") and (commit := resolve_ref(fields["save"], rootpath)):
        raise OptionError(f"{where('save')}: '{fields['save']}' is also a git ref (commit {commit[:12]}): {HIDES}")
    opts = HarnessOptions(**fields)
    check_combination(opts)
    return opts


def _compare_fields(raw: dict[str, Any], thresholds: list | None, rootpath: Path) -> dict[str, Any]:
    """The results folder (checked before any run or store read), and the baseline asked for (a saved name or a
    commit); compare_fail implies compare."""
    from ..run import environment
    from ..run.refs import default_results_dir
    from ..run.store import StoreError, check_store
    results_dir = Path(checked("results_dir", raw.get("results_dir")) or default_results_dir(rootpath)).absolute()
    try:                         # the machine id is a valid name and the store can take a record
        check_store(results_dir, environment.machine_info().fingerprint)
    except (StoreError, ValueError) as e:
        raise OptionError(f"{where('results_dir')}: {e}" if isinstance(e, StoreError) else str(e)) from None
    compare = checked("compare", raw.get("compare"))
    compare = "" if thresholds and compare is None else compare        # "": the default baseline
    out = dict(results_dir=results_dir, compare=compare)
    if compare:
        out["compare_name"], out["compare_commit"] = resolve_compare_ref(compare, rootpath, results_dir)
    return out


def check_combination(opts: HarnessOptions, prefix: str = "") -> None:
    """What a set of options must satisfy together (`prefix`: where the options were set, for the message)."""
    if opts.enforce_memory and not opts.isolate:
        raise OptionError(f"{prefix}{where('enforce_memory')} kills an isolated run that goes over its memory "
                          f"limit: add {BY_KEY['isolate'].flag}")


def marker_overrides(marker: Any, where_: str, base: HarnessOptions | None = None) -> dict[str, Any]:
    """A bench's `@pytest.mark.research(key=value, ...)` as checked overrides of `base`'s fields."""
    if marker is None:
        return {}
    if marker.args:
        raise OptionError(f"{where_}: @pytest.mark.research takes keyword arguments only, e.g. "
                          f"@pytest.mark.research(rounds=3)")
    unknown = sorted(set(marker.kwargs) - set(MARKER_KEYS))
    if unknown:
        raise OptionError(f"{where_}: @pytest.mark.research does not take '{unknown[0]}'; a bench may set "
                          f"{', '.join(MARKER_KEYS)}")
    kw = marker.kwargs
    out = checked_fields(kw, lambda key: f"{where_}: @pytest.mark.research({key}={kw[key]!r})")
    if base is not None:
        check_combination(dataclasses.replace(base, **out), f"{where_}: @pytest.mark.research: ")
    return out


def resolve_compare_ref(ref: str, rootpath: Path, results_dir: Path) -> tuple[str | None, str | None]:
    """A compare REF as (saved name, commit) among this machine's records (run/refs.py), git's view included."""
    from ..run import environment, refs
    from ..run.store import read_store
    here = read_store(results_dir, fingerprint=environment.machine_info().fingerprint).records   # skips said at the end
    try:
        found = refs.resolve(ref, here, rootpath)
    except refs.RefError as e:
        raise OptionError(f"{where('compare')}: {e}") from None
    if found is not None and not found.dirty:
        return found.name, found.commit
    if Path(ref).exists():
        raise OptionError(f"{where('compare')} took '{ref}' as its REF, but it is a path: write "
                          f"--research-compare=REF, or put it after the paths")
    raise OptionError(f"--research-compare={ref} (ini research_compare): no session on this machine was saved "
                      f"under this name (--research-save), git does not know this ref, and {results_dir} has no "
                      f"results of a commit starting with it on this machine")
