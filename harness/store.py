"""The results store: one JSON file per record, written atomically, never rewritten.

Layout: <results_dir>/<machine_fingerprint>/<commit12 or 'nocommit'>/<UTC stamp>-<record_id>.json

Writers never touch an existing file (unique names, temp file + os.replace), so concurrent pytest processes
(or xdist workers) cannot corrupt each other. Readers skip damaged files loudly (StoreWarning) and refuse
records written by a newer plugin with a clear message instead of misreading them.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
import uuid
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

RECORD_VERSION = 1
OUTCOMES = ("passed", "failed", "error", "timed_out", "interrupted", "crashed", "skipped")


class StoreWarning(UserWarning):
    """A stored record could not be read and was skipped."""


class StoreError(RuntimeError):
    """The store cannot be used (e.g. records from a newer plugin); the message names the fix."""


@dataclass
class ResultRecord:
    """One bench run as stored. Crosses module lines: plugin/session write it, compare/report read it."""
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
    budget: dict | None = None          # machine_class, time_lower_s, time_upper_s, memory_mb, scale, reference_fallback
    extra: dict = field(default_factory=dict)   # harness measurements: overhead, memray capture path, quality, ...
    record_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    timestamp: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds"))
    record_version: int = RECORD_VERSION

    def as_dict(self) -> dict:
        return asdict(self)

    def metric(self, name: str) -> Any:
        """A telemetry metric of this record, or None."""
        t = self.telemetry or {}
        return (t.get("metrics") or {}).get(name)

    @classmethod
    def from_dict(cls, d: dict) -> "ResultRecord":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def _migrate(d: dict, path: Path) -> dict:
    """Bring an older record to the current version, or refuse a newer one."""
    v = d.get("record_version")
    if not isinstance(v, int):
        raise ValueError("no record_version")
    if v > RECORD_VERSION:
        raise StoreError(f"{path}: record_version {v} was written by a newer plugin (this one reads up to "
                         f"{RECORD_VERSION}): upgrade llm-research-bench, or use another --results-dir")
    for key, typ in (("test_id", str), ("bench", str), ("machine_fingerprint", str), ("target_met", bool)):
        if not isinstance(d.get(key), typ):
            raise ValueError(f"field '{key}' missing or not a {typ.__name__}")
    if d.get("outcome") not in OUTCOMES:
        raise ValueError(f"outcome {d.get('outcome')!r} is not one of {', '.join(OUTCOMES)}")
    tel = d.get("telemetry")
    if tel is not None:
        from llm_research_bench.engine.telemetry import SCHEMA_VERSION
        tv = tel.get("schema_version") if isinstance(tel, dict) else None
        if tv != SCHEMA_VERSION:
            raise ValueError(f"its telemetry has schema_version {tv!r}; this plugin reads {SCHEMA_VERSION!r} "
                             f"(re-run the bench to store a current record)")
    return d


def record_dir(results_dir: Path, rec: ResultRecord) -> Path:
    return Path(results_dir) / rec.machine_fingerprint / ((rec.commit or "nocommit")[:12])


def append(results_dir: str | Path, rec: ResultRecord) -> Path:
    """Store one record atomically under a new, unique file name. Never overwrites."""
    d = record_dir(Path(results_dir), rec)
    d.mkdir(parents=True, exist_ok=True)
    stamp = rec.timestamp.replace(":", "").replace("-", "").replace("+0000", "Z").replace("+00:00", "Z")
    final = d / f"{stamp}-{rec.record_id}.json"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(rec.as_dict(), fh, indent=1, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, final)          # fails if the name exists: a record is never replaced
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return final


def iter_records(results_dir: str | Path, *, strict_versions: bool = True) -> Iterator[ResultRecord]:
    """Every readable record under results_dir, oldest first. Damaged files warn and are skipped.

    A record from a newer plugin raises StoreError when strict_versions (so it is never misread), or is
    skipped with a warning otherwise."""
    yield from _read_paths(Path(results_dir), "*/*/*.json", strict_versions)


def iter_records_where(results_dir: str | Path, *, fingerprint: str | None = None, commit: str | None = None,
                       strict_versions: bool = True) -> Iterator[ResultRecord]:
    """Like iter_records, but reads only the folders of one machine fingerprint and/or one commit (the store's
    layout keys folders by both), so looking up a baseline does not parse the whole history."""
    folder = "*" if not commit else (commit[:12] if len(commit) >= 12 else f"{commit}*")
    for rec in _read_paths(Path(results_dir), f"{fingerprint or '*'}/{folder}/*.json", strict_versions):
        if commit and not (rec.commit or "nocommit").startswith(commit[:40]):
            continue
        yield rec


def _read_paths(root: Path, pattern: str, strict_versions: bool) -> Iterator[ResultRecord]:
    if not root.exists():
        return
    for path in sorted(root.glob(pattern), key=lambda p: p.name):
        if path.name.startswith(".tmp-"):
            continue
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(d, dict):
                raise ValueError("not a JSON object")
            d = _migrate(d, path)
            yield ResultRecord.from_dict(d)
        except StoreError:
            if strict_versions:
                raise
            warnings.warn(f"skipped {path}: written by a newer plugin", StoreWarning, stacklevel=2)
        except (ValueError, TypeError, UnicodeDecodeError, OSError) as e:
            warnings.warn(f"skipped damaged result record {path}: {type(e).__name__}: {e}", StoreWarning,
                          stacklevel=2)


def load_records(results_dir: str | Path, **kw) -> list[ResultRecord]:
    return list(iter_records(results_dir, **kw))
