"""What a stored bench record means, shared by every room: the record and its checks, outcomes, reason codes, usable
measurements, series, summary statistics, and the metric specs, read from schemas/, never from a list in code."""
from __future__ import annotations

import datetime as _dt
import json
import math
import statistics
import uuid
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from typing import Any, Iterable

from llm_research_bench.engine.telemetry import SCHEMAS_DIR

RECORD_VERSION = 1

#: The engine's public entry as the runner a record names; a unit test may swap in a test double.
DEFAULT_RUNNER = "llm_research_bench.engine:research"
#: Runner names of real measurements in stored records (the engine's entry under either module path, or a bench
#: that ran the engine itself); any other runner is a test double.
REAL_RUNNERS = (DEFAULT_RUNNER, "engine:research", "bench-supplied telemetry")

#: What happened to a run. `passed`/`failed` ran to the end (`failed`: target missed or engine failure).
PASSED, FAILED, ERROR, TIMED_OUT, INTERRUPTED, CRASHED, SKIPPED = (
    "passed", "failed", "error", "timed_out", "interrupted", "crashed", "skipped")
OUTCOMES = (PASSED, FAILED, ERROR, TIMED_OUT, INTERRUPTED, CRASHED, SKIPPED)

#: Why a run missed its target (stable codes stored in extra['reason_codes']; messages are for people).
(TIME_OVER, MEMORY_OVER, SCHEMA_INVALID, NO_CLAIMS, CITATIONS_BELOW_FLOOR, GROUNDED_BELOW_FLOOR, NO_CITATIONS,
 RUN_FAILED, RUN_TIMED_OUT, RUN_CRASHED, NO_TELEMETRY) = (
    "time_over_budget", "memory_over_limit", "schema_invalid", "no_claims", "citation_validity_below_floor",
    "grounded_citations_below_floor", "no_citations", "run_failed", "timed_out", "crashed", "no_telemetry")
#: Reason code -> the one word a summary table shows for it.
REASON_CATEGORY = {
    TIME_OVER: "time", MEMORY_OVER: "memory", SCHEMA_INVALID: "schema", NO_CLAIMS: "quality", CITATIONS_BELOW_FLOOR:
    "quality", GROUNDED_BELOW_FLOOR: "quality", NO_CITATIONS: "quality", RUN_FAILED: "failed", RUN_TIMED_OUT: "timeout",
    RUN_CRASHED: "crash", NO_TELEMETRY: "failed"}


class RecordError(ValueError):
    """A stored document is not a record this version can read; `detail` says why without the fix."""

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.detail = detail or message


class NewerRecordError(RecordError):
    """A record written by a newer plugin: never misread, the message names the fix."""


class OlderRecordError(RecordError):
    """A record of an older schema (telemetry or record version) than this plugin reads; the message names the fix."""


class WrongTypeError(RecordError):
    """A record whose field or metric has the wrong type (e.g. "execution_time_s": "fast"): never misread."""


class OutOfRangeError(RecordError):
    """A metric outside its schema's range (a negative time, NaN, an infinity): the record is not believed."""


@dataclass
class ResultRecord:
    """One bench run as stored (one JSON file in the results store)."""
    test_id: str
    bench: str
    profile: str | None
    outcome: str
    target_met: bool
    machine_fingerprint: str
    machine_class: str
    commit: str | None = None
    dirty: bool | None = None
    branch: str | None = None
    plugin_version: str = ""
    reasons: list[str] = field(default_factory=list)
    round: int = 0
    warmup: bool = False
    telemetry: dict | None = None
    schema_valid: bool | None = None
    schema_errors: list[str] = field(default_factory=list)
    budget: dict | None = None    # machine_class, time_lower_s, time_upper_s, memory_mb, scale, reference_fallback
    extra: dict = field(default_factory=dict)   # harness measurements: overhead, memray capture path, quality, ...
    record_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    timestamp: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds"))
    record_version: int = RECORD_VERSION

    def as_dict(self) -> dict:
        return asdict(self)

    def metric(self, name: str) -> Any:
        """A telemetry metric of this record, or None."""
        t = self.telemetry or {}
        return (t.get("metrics") or {}).get(name)

    @property
    def reason_codes(self) -> list[str]:
        return list((self.extra or {}).get("reason_codes") or [])

    @property
    def gated(self) -> bool:
        """Whether this record's verdict may fail the session (ablations store theirs ungated)."""
        return (self.extra or {}).get("gate", True) is not False

    @classmethod
    def from_dict(cls, d: dict) -> "ResultRecord":
        """A record from its stored form, checked (a RecordError says why it cannot be read), in current names."""
        return cls(**{k: v for k, v in check_stored(current_names(d)).items() if k in FIELD_TYPES})


_TYPE_NAMES = {"str": str, "int": int, "bool": bool, "list": list, "dict": dict, "None": type(None)}
#: The stored type(s) of each record field, read from its annotation.
FIELD_TYPES: dict[str, tuple] = {f.name: tuple(_TYPE_NAMES[t.strip().split("[")[0]] for t in str(f.type).split("|"))
                                 for f in fields(ResultRecord)}
#: Fields a stored record must have (the others have defaults).
REQUIRED_FIELDS = ("test_id", "bench", "outcome", "target_met", "machine_fingerprint", "record_version")


def _version(v: Any) -> tuple[int, ...]:
    return tuple(map(int, str(v).split("."))) if all(x.isdigit() for x in str(v).split(".")) else ()


def check_stored(d: Any) -> dict:
    """The checks a stored document passes before it is read as a record; a RecordError says why it cannot be."""
    from llm_research_bench.engine.telemetry import READABLE_VERSIONS, SCHEMA_VERSION

    if not isinstance(d, dict):
        raise RecordError("not a JSON object")
    check_depth(d)
    v = d.get("record_version")
    if not isinstance(v, int) or isinstance(v, bool):
        raise RecordError("no record_version")
    if v > RECORD_VERSION:
        detail = f"record_version {v}; this plugin reads up to {RECORD_VERSION}"
        raise NewerRecordError(f"record_version {v} was written by a newer plugin (this one reads up to "
                               f"{RECORD_VERSION}): upgrade llm-research-bench, or use another results folder", detail)
    if v < 1:
        raise OlderRecordError(f"record_version {v} is older than this plugin reads (1-{RECORD_VERSION})")
    missing = next((key for key in REQUIRED_FIELDS if key not in d), None)
    if missing:
        raise RecordError(f"field '{missing}' missing")
    for key, types in FIELD_TYPES.items():
        if key in d and not (bool in types if isinstance(d[key], bool) else isinstance(d[key], types)):
            want = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise WrongTypeError(f"field '{key}' is {json.dumps(d[key])[:40]}, not {want}")
    if d.get("outcome") not in OUTCOMES:
        raise WrongTypeError(f"outcome {d.get('outcome')!r} is not one of {', '.join(OUTCOMES)}")
    tv = (d.get("telemetry") or {}).get("schema_version")
    if d.get("telemetry") is not None and tv not in READABLE_VERSIONS:
        detail = f"telemetry schema_version {tv!r}; this plugin reads {SCHEMA_VERSION!r}"
        if _version(tv) > _version(SCHEMA_VERSION):
            raise NewerRecordError(f"its telemetry has schema_version {tv!r}, newer than this plugin reads "
                                   f"({SCHEMA_VERSION!r}): upgrade llm-research-bench", detail)
        raise OlderRecordError(f"its telemetry has schema_version {tv!r}; this plugin reads {SCHEMA_VERSION!r} "
                               f"(re-run the bench to store a current record)", detail)
    check_metrics(d)
    return d


#: How deep a stored record may nest (a record nests a few levels); deeper is damage, refused before any recursion.
MAX_DEPTH = 32


def check_depth(doc: Any) -> None:
    """RecordError when `doc` nests deeper than MAX_DEPTH (walked without recursion)."""
    stack = [(doc, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > MAX_DEPTH:
                raise RecordError(f"nested deeper than {MAX_DEPTH} levels")
            stack += [(x, depth + 1) for x in (v.values() if isinstance(v, dict) else v)]


def range_problem(v: Any, spec: dict) -> str | None:
    """Why the number `v` is outside its schema entry's range ('infinite', 'below the minimum 0'), or None."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return None
    if not math.isfinite(v):
        return "not a number" if math.isnan(v) else "infinite"
    lo, hi = spec.get("minimum"), spec.get("maximum")
    if lo is not None and v < lo:
        return f"below the minimum {lo}"
    if hi is not None and v > hi:
        return f"above the maximum {hi}"
    return None


def check_metrics(d: dict) -> None:
    """Each metric of the telemetry, quality and breakdown of its schema's JSON Schema type and within its range."""
    extra = d.get("extra") or {}
    # a record stored as schema-invalid says so itself: its telemetry's types are not checked
    sources = [("telemetry", "telemetry.metrics", d.get("telemetry"), d.get("schema_valid") is not False)]
    sources += [(src, f"extra.{src}.metrics", extra.get(src), True) for src in ("quality", "breakdown")]
    for source, where, sub, typed in sources:
        metrics = sub.get("metrics") if isinstance(sub, dict) else None
        if not isinstance(metrics, dict):
            if metrics is not None and typed:
                raise WrongTypeError(f"{where} is a {type(metrics).__name__}, not an object")
            continue
        from jsonschema import Draft202012Validator      # imported only where there are metrics to check
        is_type, specs = Draft202012Validator.TYPE_CHECKER.is_type, metric_specs(source)
        for name, v in metrics.items():
            declared = (specs.get(name) or {}).get("type")
            want = declared if isinstance(declared, list) else [declared]
            if typed and declared is not None and not any(is_type(v, t) for t in want):
                raise WrongTypeError(f"{where}.{name} is {json.dumps(v)[:40]}, not {' or '.join(want)}")
            why = range_problem(v, specs.get(name) or {})
            if why:
                shown = v if math.isfinite(v) and abs(v) < 1e15 else f"{v:.3g}"
                raise OutOfRangeError(f"{where}.{name} is {shown}: {why}", f"{where}.{name} is {shown} ({why})")


def is_usable(rec: ResultRecord) -> bool:
    """A measurement that can be compared, charted and exported: a measured run (not a warm-up) that ran to the
    end (a budget miss still measured it; a crash, timeout or engine failure did not) and was not superseded."""
    if rec.warmup or rec.outcome not in (PASSED, FAILED) or is_superseded(rec):
        return False
    t = rec.telemetry
    return t is None or (bool(t.get("success")) and not t.get("timed_out"))


# extra keys of an instance's runs (run/bench.py writes, analysis/gate.py reads): instance, attempt (1, then 2, 3 ...
# when re-measured), other_cpu_load, contended, superseded (measured again), instance_verdict (on the last run).
def is_contended(rec: ResultRecord) -> bool:
    """Timed while other processes held a real share of the CPUs (run/cpu.py): its timings are inflated."""
    return bool((rec.extra or {}).get("contended"))


def is_superseded(rec: ResultRecord) -> bool:
    """A contended run that was measured again: kept in the store, flagged, never counted twice."""
    return bool((rec.extra or {}).get("superseded"))


def instance_of(rec: ResultRecord) -> str:
    """The bench instance a record belongs to (one `research_bench.run` call's rounds, or the record alone)."""
    return (rec.extra or {}).get("instance") or rec.record_id


def series_key(rec: ResultRecord) -> str:
    """A record's series across commits: 'pipeline[quick]', or an ablation's 'pipeline[quick]/no-early-exit'."""
    key = f"{rec.bench}[{rec.profile}]" if rec.profile else rec.bench
    variant = (rec.extra or {}).get("variant")
    return f"{key}/{variant}" if variant else key


def is_number(v: Any) -> bool:
    """A finite int or float (bools are not numbers here)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Summary:
    """Summary statistics of one metric over a series' runs (numbers that are not finite are dropped)."""
    n: int
    median: float | None
    q1: float | None
    q3: float | None
    low: float | None = None
    high: float | None = None

    @property
    def iqr(self) -> float | None:
        return None if self.q1 is None or self.q3 is None else self.q3 - self.q1


def summarize(values: Iterable[Any]) -> Summary:
    vals = sorted(float(v) for v in values if is_number(v))
    if not vals:
        return Summary(0, None, None, None)
    # quartiles by linear interpolation between closest ranks (numpy's default method)
    q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive") if len(vals) > 1 else vals * 3
    return Summary(len(vals), statistics.median(vals), q1, q3, vals[0], vals[-1])


@lru_cache(maxsize=None)
def schema(name: str) -> dict:
    return json.loads((SCHEMAS_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))


def metric_specs(source: str = "telemetry") -> dict[str, dict]:
    """Metric name -> its schema entry (x-unit, x-better, x-label, description), less the `deprecated` names."""
    return {n: s for n, s in schema(source)["properties"]["metrics"]["properties"].items() if not s.get("deprecated")}


@lru_cache(maxsize=1)
def renamed_metrics() -> dict[str, str]:
    """Older telemetry metric name -> current name: the schema's one table of renames (`x-renamed-to`)."""
    props = schema("telemetry")["properties"]["metrics"]["properties"]
    return {n: s["x-renamed-to"] for n, s in props.items() if s.get("x-renamed-to")}


def current_names(d: Any) -> Any:
    """A stored record with its telemetry's metric names (and `unmeasured` keys) mapped to the current names; the
    telemetry keeps its schema_version. Anything else comes back as it is (check_stored says what is wrong)."""
    tel = d.get("telemetry") if isinstance(d, dict) else None
    if not isinstance(tel, dict):
        return d
    renamed, tel = renamed_metrics(), dict(tel)
    for key in ("metrics", "unmeasured"):
        if isinstance(tel.get(key), dict) and renamed.keys() & tel[key].keys():
            tel[key] = {renamed.get(k, k): v for k, v in tel[key].items()}
    return {**d, "telemetry": tel}


@lru_cache(maxsize=1)
def all_specs() -> dict[str, dict]:
    """Metric name -> spec (plus `source`: which schema) over every schema; no name is in two of them."""
    return {n: {**s, "source": src} for src in ("telemetry", "quality", "breakdown")
            for n, s in metric_specs(src).items()}


def spec(name: str) -> dict:
    """A metric's spec; a name no schema describes gets unit '' and direction 'none'."""
    return all_specs().get(name, {"x-unit": "", "x-better": "none", "source": "record"})


def unit(name: str) -> str:
    return spec(name).get("x-unit", "")


def better(name: str) -> str:
    return spec(name).get("x-better", "none")


def label(name: str) -> str:
    return spec(name).get("x-label") or name


def headline_metrics(source: str = "telemetry") -> list[str]:
    """Metrics a schema labels (x-label) and gives a direction: the ones summaries show by default."""
    return [n for n, s in metric_specs(source).items() if s.get("x-label") and s.get("x-better") in ("lower", "higher")]


def validation_errors(name: str, doc: Any) -> list[str]:
    """A bench summary (quality, breakdown) checked against schemas/<name>.schema.json, formats included."""
    from jsonschema import Draft202012Validator
    v = Draft202012Validator(schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in v.iter_errors(doc)]
