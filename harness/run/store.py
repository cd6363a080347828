"""The results store (I/O only; what a record means is harness.records): one JSON file per record, written
atomically, never rewritten.

Layout: <results_dir>/<machine_fingerprint>/<commit12 or 'nocommit'>[+dirty]/<UTC stamp>-<record_id>.json
A run made on a dirty tree (uncommitted changes to tracked files) is filed apart from its commit's clean runs,
under `<commit12>+dirty`, and readers asked for a commit's runs return its clean runs only, unless asked to
include the dirty ones (records of older layouts, with a dirty flag in a clean folder, are filtered the same).

Writers never touch an existing file (unique names, temp file + os.replace), so concurrent pytest processes
(or xdist workers) cannot corrupt each other.

Readers never block and never misread:
    read_store(results_dir, fingerprint=, commit=) -> StoreRead(records, skipped)
        every readable record, oldest file name first, and a Skipped tally of what was left out and why, by
        kind (SKIP_KINDS): records from a newer plugin, of an older schema, with a wrong type, damaged files,
        non-regular files (a FIFO named *.json is never opened for a blocking read), files over
        MAX_RECORD_BYTES (never read whole), unreadable files. `skipped.lines()` says it in one line per kind;
        every command prints those lines, and the plugin's session summary shows them.
    iter_records / iter_records_where / load_records   the same records; with `skipped=Skipped()` they tally
        too, without it they keep their older contract (a StoreWarning per skipped file; a newer record raises
        StoreError when strict_versions).
"""
from __future__ import annotations

import json
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from llm_research_bench.engine.atomic import FileTooLarge, NotRegularFile, read_regular, size_text, write_json

from ..records import NewerRecordError, OlderRecordError, RecordError, ResultRecord, WrongTypeError

#: A record is a few KiB (a quality bench's, with its per-question figures, well under 1 MiB). A file larger than
#: this is not read: skipping a 200 MB file must not cost its size in memory.
MAX_RECORD_BYTES = 16 << 20

NEWER, OLDER, WRONG_TYPE, DAMAGED, NOT_REGULAR, TOO_LARGE, UNREADABLE = (
    "newer", "older", "wrong_type", "damaged", "not_regular", "too_large", "unreadable")
#: kind -> (what was skipped: one, many; how to fix it): one line per kind in every command's output.
SKIP_KINDS: dict[str, tuple[str, str, str]] = {
    NEWER: ("record written by a newer plugin", "records written by a newer plugin",
            "upgrade llm-research-bench to read them"),
    OLDER: ("record of an older schema", "records of an older schema", "re-run their benches to store current records"),
    WRONG_TYPE: ("record with a field or metric of the wrong type", "records with a field or metric of the wrong type",
                 "fix or remove those files"),
    DAMAGED: ("damaged file that is not a record", "damaged files that are not records",
              "remove them, or restore them from a copy"),
    NOT_REGULAR: ("non-regular file named *.json", "non-regular files named *.json",
                  "remove them from the results folder"),
    TOO_LARGE: (f"file over the {size_text(MAX_RECORD_BYTES)} record size limit",
                f"files over the {size_text(MAX_RECORD_BYTES)} record size limit",
                "a record is a few KiB: remove them from the results folder"),
    UNREADABLE: ("file that could not be read", "files that could not be read", "check their permissions"),
}


class StoreWarning(UserWarning):
    """A stored record could not be read and was skipped (the older readers' way of saying so)."""


class StoreError(RuntimeError):
    """The store cannot be used (e.g. its path is not a folder); the message names the fix."""


@dataclass
class Skipped:
    """What reads of the store left out: each skipped file once, with its kind and reason (first seen)."""
    files: dict[Path, tuple[str, str]] = field(default_factory=dict)     # path -> (kind, reason)

    def add(self, kind: str, path: Path, why: str) -> None:
        self.files.setdefault(Path(path), (kind, why))

    def merge(self, other: "Skipped") -> None:
        for path, item in other.files.items():
            self.files.setdefault(path, item)

    @property
    def counts(self) -> Counter:
        return Counter(kind for kind, _ in self.files.values())

    @property
    def total(self) -> int:
        return len(self.files)

    def __bool__(self) -> bool:
        return bool(self.files)

    def lines(self) -> list[str]:
        """One line per kind, e.g. 'skipped 2 records written by a newer plugin, e.g. PATH (record_version 99;
        this plugin reads up to 1): upgrade llm-research-bench to read them'."""
        out = []
        counts = self.counts
        for kind, (one, many, fix) in SKIP_KINDS.items():
            n = counts.get(kind, 0)
            if n:
                path, why = next((p, w) for p, (k, w) in self.files.items() if k == kind)
                out.append(f"skipped {n} {one if n == 1 else many}, {'' if n == 1 else 'e.g. '}{path} ({why}): {fix}")
        return out


@dataclass
class StoreRead:
    """The records a read found, and what it skipped."""
    records: list[ResultRecord]
    skipped: Skipped


def default_results_dir() -> str:
    """The store the research-bench commands read: $RESEARCH_BENCH_RESULTS_DIR, else ./results."""
    from llm_research_bench.engine.envvars import env
    return env("RESULTS_DIR", "results")


def record_dir(results_dir: Path, rec: ResultRecord) -> Path:
    return Path(results_dir) / rec.machine_fingerprint / ((rec.commit or "nocommit")[:12] + ("+dirty" if rec.dirty else ""))


def append(results_dir: str | Path, rec: ResultRecord) -> Path:
    """Store one record atomically under a new, unique file name. Never overwrites."""
    d = record_dir(Path(results_dir), rec)
    stamp = rec.timestamp.replace(":", "").replace("-", "").replace("+0000", "Z").replace("+00:00", "Z")
    return write_json(d / f"{stamp}-{rec.record_id}.json", rec.as_dict(), exclusive=True, indent=1, default=str)


def read_store(results_dir: str | Path, *, fingerprint: str | None = None, commit: str | None = None) -> StoreRead:
    """Every readable record (of one machine fingerprint and/or commit when given), and what was skipped."""
    skipped = Skipped()
    recs = list(iter_records_where(results_dir, fingerprint=fingerprint, commit=commit, skipped=skipped))
    return StoreRead(recs, skipped)


def iter_records(results_dir: str | Path, *, strict_versions: bool = True,
                 skipped: Skipped | None = None) -> Iterator[ResultRecord]:
    """Every readable record under results_dir, oldest first. With `skipped`, what is left out is tallied there;
    without it, each skipped file warns (StoreWarning) and a record from a newer plugin raises StoreError when
    strict_versions (so it is never misread)."""
    yield from _read_paths(Path(results_dir), "*/*/*.json", strict_versions, skipped)


def iter_records_where(results_dir: str | Path, *, fingerprint: str | None = None, commit: str | None = None,
                       strict_versions: bool = True, include_dirty: bool = False,
                       skipped: Skipped | None = None) -> Iterator[ResultRecord]:
    """Like iter_records, but reads only the folders of one machine fingerprint and/or one commit (the store's
    layout keys folders by both), so looking up a baseline does not parse the whole history. With `commit`,
    only that commit's clean runs, unless `include_dirty`."""
    if not commit:
        folders = ["*"]
    elif len(commit) < 12:
        folders = [f"{commit}*"]                 # a prefix: clean and dirty folders (filtered below)
    else:
        folders = [commit[:12]] + ([commit[:12] + "+dirty"] if include_dirty else [])
    for folder in folders:
        for rec in _read_paths(Path(results_dir), f"{fingerprint or '*'}/{folder}/*.json", strict_versions,
                               skipped):
            if commit and not (rec.commit or "nocommit").startswith(commit[:40]):
                continue
            if commit and rec.dirty and not include_dirty:
                continue
            yield rec


def read_record(path: Path) -> ResultRecord:
    """One stored record. Raises what SKIP_KINDS classify: OSError (NotRegularFile, FileTooLarge ...),
    UnicodeDecodeError / ValueError (not JSON), RecordError and its subclasses."""
    return ResultRecord.from_dict(json.loads(read_regular(path, max_bytes=MAX_RECORD_BYTES).decode("utf-8")))


def classify(exc: BaseException) -> tuple[str, str]:
    """(skip kind, reason) of an exception from read_record."""
    if isinstance(exc, RecordError):
        kind = {NewerRecordError: NEWER, OlderRecordError: OLDER, WrongTypeError: WRONG_TYPE}.get(type(exc), DAMAGED)
        return kind, exc.detail
    if isinstance(exc, NotRegularFile):
        return NOT_REGULAR, str(exc).rsplit(" is ", 1)[-1]
    if isinstance(exc, FileTooLarge):
        return TOO_LARGE, str(exc).rsplit(" is ", 1)[-1]
    if isinstance(exc, UnicodeDecodeError):
        return DAMAGED, f"not UTF-8 ({exc.reason} at byte {exc.start})"
    if isinstance(exc, json.JSONDecodeError):
        return DAMAGED, f"not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, OSError):
        return UNREADABLE, exc.strerror or str(exc)
    return DAMAGED, f"{type(exc).__name__}: {exc}"


def _read_paths(root: Path, pattern: str, strict_versions: bool, skipped: Skipped | None) -> Iterator[ResultRecord]:
    if not root.exists():
        return
    if not root.is_dir():
        raise StoreError(f"results folder {root} is not a folder: pass the folder that holds the records "
                         f"(--results-dir)")
    yield from _read_files(sorted(root.glob(pattern), key=lambda p: p.name), strict_versions, skipped)


def _read_files(paths, strict_versions: bool, skipped: Skipped | None = None) -> Iterator[ResultRecord]:
    for path in paths:
        path = Path(path)
        if path.name.startswith("."):            # a write in progress (engine.atomic's temp files)
            continue
        try:
            yield read_record(path)
        except (RecordError, ValueError, TypeError, OSError) as e:   # UnicodeDecodeError is a ValueError
            kind, why = classify(e)
            if skipped is not None:
                skipped.add(kind, path, why)
            elif kind == NEWER and strict_versions:
                raise StoreError(f"{path}: {e}") from None
            elif kind == NEWER:
                warnings.warn(f"skipped {path}: written by a newer plugin", StoreWarning, stacklevel=2)
            else:
                warnings.warn(f"skipped damaged result record {path}: {type(e).__name__}: {e}", StoreWarning,
                              stacklevel=2)


def load_files(paths, *, strict_versions: bool = False, skipped: Skipped | None = None) -> list[ResultRecord]:
    """The records in these files (e.g. the ones xdist workers reported writing), in the given order."""
    return list(_read_files(paths, strict_versions, skipped))


def load_records(results_dir: str | Path, **kw) -> list[ResultRecord]:
    return list(iter_records(results_dir, **kw))
