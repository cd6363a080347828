"""The results store: one JSON file per record, written atomically under a unique name, never rewritten, in
<results_dir>/<fingerprint>/<commit12 or 'nocommit'>[+dirty]/. A read never blocks nor misreads: what it cannot read
is tallied in `Skipped`, by kind (SKIP_KINDS)."""
from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from llm_research_bench.engine.atomic import FileTooLarge, NotRegularFile, read_regular, size_text, write_json
from llm_research_bench.engine.envvars import env, name as envvar_name
from llm_research_bench.engine.names import check_name

from ..records import (NewerRecordError, OlderRecordError, OutOfRangeError, RecordError, ResultRecord,
                       WrongTypeError)

#: A record is a few KiB; a larger file is skipped unread.
MAX_RECORD_BYTES = 16 << 20
#: The free space the store must have before a run: room for many records.
MIN_FREE_BYTES = 1 << 20
#: The folder of the file that keeps records the store could not take.
FALLBACK_ENV = envvar_name("FALLBACK_DIR")

NEWER, OLDER, WRONG_TYPE, OUT_OF_RANGE, DAMAGED, NOT_REGULAR, TOO_LARGE, UNREADABLE = (
    "newer", "older", "wrong_type", "out_of_range", "damaged", "not_regular", "too_large", "unreadable")
#: kind -> (what was skipped: one, many; how to fix it): one line per kind in every command's output.
SKIP_KINDS: dict[str, tuple[str, str, str]] = {
    NEWER: ("record written by a newer plugin", "records written by a newer plugin",
            "upgrade llm-research-bench to read them"),
    OLDER: ("record of an older schema", "records of an older schema", "re-run their benches to store current records"),
    WRONG_TYPE: ("record with a field or metric of the wrong type", "records with a field or metric of the wrong type",
                 "fix or remove those files"),
    OUT_OF_RANGE: ("damaged record with a value outside the schema's range",
                   "damaged records with values outside the schema's range", "fix or remove those files"),
    DAMAGED: ("damaged file that is not a record", "damaged files that are not records",
              "remove them, or restore them from a copy"),
    NOT_REGULAR: ("non-regular file named *.json", "non-regular files named *.json",
                  "remove them from the results folder"),
    TOO_LARGE: (f"file over the {size_text(MAX_RECORD_BYTES)} record size limit",
                f"files over the {size_text(MAX_RECORD_BYTES)} record size limit",
                "a record is a few KiB: remove them from the results folder"),
    UNREADABLE: ("file that could not be read", "files that could not be read", "check their permissions"),
}


class StoreError(RuntimeError):
    """The store cannot be used (e.g. its path is not a folder); the message names the fix."""


@dataclass
class Skipped:
    """What reads of the store left out: each skipped file once, with its kind and reason (first seen)."""
    files: dict[Path, tuple[str, str]] = field(default_factory=dict)     # path -> (kind, reason)

    def merge(self, other: "Skipped") -> None:
        for path, item in other.files.items():
            self.files.setdefault(path, item)

    @property
    def counts(self) -> Counter:
        return Counter(kind for kind, _ in self.files.values())

    @property
    def total(self) -> int:
        return len(self.files)

    def _which(self, kind: str) -> str:
        """For values outside the schema's range, each kind seen: ' (negative, not a number, infinite)'."""
        if kind != OUT_OF_RANGE:
            return ""
        whys = [w.rsplit("(", 1)[-1].rstrip(")") for k, w in self.files.values() if k == kind]
        return f" ({', '.join(dict.fromkeys('negative' if w == 'below the minimum 0' else w for w in whys))})"

    def lines(self) -> list[str]:
        """One line per kind: 'skipped 2 records written by a newer plugin, e.g. PATH (why): fix'."""
        out, counts = [], self.counts
        for kind, (one, many, fix) in SKIP_KINDS.items():
            if n := counts.get(kind, 0):
                path, why = next((p, w) for p, (k, w) in self.files.items() if k == kind)
                out.append(f"skipped {n} {one if n == 1 else many}{self._which(kind)}, {'' if n == 1 else 'e.g. '}"
                           f"{path} ({why}): {fix}")
        return out


@dataclass
class StoreRead:
    """The records a read found, and what it skipped."""
    records: list[ResultRecord]
    skipped: Skipped


def append(results_dir: str | Path, rec: ResultRecord) -> Path:
    """Store one record atomically under a new, unique file name."""
    d = Path(results_dir, rec.machine_fingerprint, (rec.commit or "nocommit")[:12] + ("+dirty" if rec.dirty else ""))
    stamp = rec.timestamp.replace(":", "").replace("-", "").replace("+0000", "Z").replace("+00:00", "Z")
    return write_json(d / f"{stamp}-{rec.record_id}.json", rec.as_dict(), exclusive=True, indent=1, default=str)


def check_store(results_dir: str | Path, fingerprint: str | None = None) -> None:
    """Before a run: the results folder (and this machine's folder in it) can be created, written and has room."""
    root = Path(results_dir)
    for path, what in ((root, "results folder"), (root / fingerprint if fingerprint else None, "machine folder")):
        if path is not None and path.exists() and not path.is_dir():
            raise StoreError(f"the {what} {path} is a file: remove it, or pass another folder (--research-results-dir)")
    parent = next((p for p in (root, *root.parents) if p.exists()), root)
    if not parent.is_dir():
        raise StoreError(f"the results folder {root} cannot be created: {parent} is a file (pass another folder "
                         f"with --research-results-dir)")
    try:
        with tempfile.TemporaryFile(dir=parent, prefix=".write-check-"):
            pass
        free = shutil.disk_usage(parent).free
    except OSError as e:
        raise StoreError(f"the results folder {root} is not writable ({parent}: {e.strerror or e}): fix its "
                         f"permissions or pass another folder (--research-results-dir)") from None
    if free < MIN_FREE_BYTES:
        raise StoreError(f"the results folder {root} has no room for a record ({size_text(free)} free on its "
                         f"disk): free some space or pass another folder (--research-results-dir)")


def fallback_file() -> Path:
    """Where records go that the store could not take: $RESEARCH_BENCH_FALLBACK_DIR, else the temp folder."""
    folder = Path(env("FALLBACK_DIR") or tempfile.gettempdir())
    return folder / f"research-bench-unsaved-{time.strftime('%Y%m%d', time.gmtime())}.jsonl"


@dataclass
class Saved:
    """Where a record went: the store, or the fallback file when the store could not take it (`error`)."""
    path: Path
    error: str | None = None

    @property
    def line(self) -> str:
        return (f"a record could not be written to the store ({self.error}): kept in {self.path} (one JSON line "
                f"a record)" if self.error else "")


def append_or_fallback(results_dir: str | Path, rec: ResultRecord,
                       writer: Callable[[str | Path, ResultRecord], Path] | None = None) -> Saved:
    """Store one record; when the store cannot take it (a full disk, a folder made read-only during the run),
    append it as one JSON line to fallback_file(), so that the measured run is kept."""
    try:
        return Saved((writer or append)(results_dir, rec))
    except OSError as e:
        error = f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")
    target = fallback_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(rec.as_dict(), default=str) + "\n")
    return Saved(target, error)


def read_store(results_dir: str | Path, *, fingerprint: str | None = None, commit: str | None = None,
               files: Iterable[str | Path] | None = None) -> StoreRead:
    """Every readable record, oldest file name first, and what was skipped. Only one machine `fingerprint`'s
    and/or one `commit`'s (a prefix, or a full id) clean runs when given; only these `files` when given."""
    skipped, records = Skipped(), []
    for path in map(Path, _glob(Path(results_dir), fingerprint, commit) if files is None else files):
        if path.name.startswith("."):            # a write in progress (engine.atomic's temp files)
            continue
        try:
            rec = ResultRecord.from_dict(json.loads(read_regular(path, max_bytes=MAX_RECORD_BYTES).decode("utf-8")))
        except (RecordError, ValueError, TypeError, OSError, RecursionError) as e:   # UnicodeDecodeError: ValueError
            skipped.files.setdefault(path, classify(e))
            continue
        if not commit or ((rec.commit or "nocommit").startswith(commit[:40]) and not rec.dirty):
            records.append(rec)
    return StoreRead(records, skipped)


def _glob(root: Path, fingerprint: str | None, commit: str | None) -> list[Path]:
    if not root.exists():
        return []
    if not root.is_dir():
        raise StoreError(f"results folder {root} is not a folder: pass the folder that holds the records "
                         f"(--results-dir)")
    if fingerprint is not None:
        check_name(fingerprint, "machine")             # a name, never a path: `..` would read beside the store
    if commit is not None and not re.fullmatch(r"[0-9A-Za-z]+", commit):
        raise StoreError(f"'{commit}' is not a commit id (hexadecimal, or 'nocommit')")
    folder = "*" if not commit else f"{commit}*" if len(commit) < 12 else commit[:12]
    return sorted(root.glob(f"{fingerprint or '*'}/{folder}/*.json"), key=lambda p: p.name)


def classify(exc: BaseException) -> tuple[str, str]:
    """(skip kind, reason) of an exception from reading a record file."""
    if isinstance(exc, RecordError):
        kind = {NewerRecordError: NEWER, OlderRecordError: OLDER, WrongTypeError: WRONG_TYPE,
                OutOfRangeError: OUT_OF_RANGE}.get(type(exc), DAMAGED)
        return kind, exc.detail
    if isinstance(exc, (NotRegularFile, FileTooLarge)):
        return NOT_REGULAR if isinstance(exc, NotRegularFile) else TOO_LARGE, str(exc).rsplit(" is ", 1)[-1]
    if isinstance(exc, UnicodeDecodeError):
        return DAMAGED, f"not UTF-8 ({exc.reason} at byte {exc.start})"
    if isinstance(exc, json.JSONDecodeError):
        return DAMAGED, f"not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, RecursionError):
        return DAMAGED, "nested too deeply to be a record"
    if isinstance(exc, OSError):
        return UNREADABLE, exc.strerror or str(exc)
    return DAMAGED, f"{type(exc).__name__}: {exc}"
