"""The results store (I/O only; what a record means is harness.records): one JSON file per record, written
atomically, never rewritten.

Layout: <results_dir>/<machine_fingerprint>/<commit12 or 'nocommit'>[+dirty]/<UTC stamp>-<record_id>.json
A run made on a dirty tree (uncommitted changes to tracked files) is filed apart from its commit's clean runs,
under `<commit12>+dirty`, and readers asked for a commit's runs return its clean runs only, unless asked to
include the dirty ones (records of older layouts, with a dirty flag in a clean folder, are filtered the same).

Writers never touch an existing file (unique names, temp file + os.replace), so concurrent pytest processes
(or xdist workers) cannot corrupt each other. Readers skip damaged files loudly (StoreWarning) and refuse
records written by a newer plugin with a clear message instead of misreading them.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Iterator

from llm_research_bench.engine.atomic import write_json

from ..records import NewerRecordError, RecordError, ResultRecord


class StoreWarning(UserWarning):
    """A stored record could not be read and was skipped."""


class StoreError(RuntimeError):
    """The store cannot be used (e.g. records from a newer plugin); the message names the fix."""


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


def iter_records(results_dir: str | Path, *, strict_versions: bool = True) -> Iterator[ResultRecord]:
    """Every readable record under results_dir, oldest first. Damaged files warn and are skipped.

    A record from a newer plugin raises StoreError when strict_versions (so it is never misread), or is
    skipped with a warning otherwise."""
    yield from _read_paths(Path(results_dir), "*/*/*.json", strict_versions)


def iter_records_where(results_dir: str | Path, *, fingerprint: str | None = None, commit: str | None = None,
                       strict_versions: bool = True, include_dirty: bool = False) -> Iterator[ResultRecord]:
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
        for rec in _read_paths(Path(results_dir), f"{fingerprint or '*'}/{folder}/*.json", strict_versions):
            if commit and not (rec.commit or "nocommit").startswith(commit[:40]):
                continue
            if commit and rec.dirty and not include_dirty:
                continue
            yield rec


def _read_paths(root: Path, pattern: str, strict_versions: bool) -> Iterator[ResultRecord]:
    if not root.exists():
        return
    yield from _read_files(sorted(root.glob(pattern), key=lambda p: p.name), strict_versions)


def _read_files(paths, strict_versions: bool) -> Iterator[ResultRecord]:
    for path in paths:
        path = Path(path)
        if path.name.startswith("."):            # a write in progress (engine.atomic's temp files)
            continue
        try:
            yield ResultRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except NewerRecordError as e:
            if strict_versions:
                raise StoreError(f"{path}: {e}") from None
            warnings.warn(f"skipped {path}: written by a newer plugin", StoreWarning, stacklevel=2)
        except (RecordError, ValueError, TypeError, UnicodeDecodeError, OSError) as e:
            warnings.warn(f"skipped damaged result record {path}: {type(e).__name__}: {e}", StoreWarning,
                          stacklevel=2)


def load_files(paths, *, strict_versions: bool = False) -> list[ResultRecord]:
    """The records in these files (e.g. the ones xdist workers reported writing), in the given order."""
    return list(_read_files(paths, strict_versions))


def load_records(results_dir: str | Path, **kw) -> list[ResultRecord]:
    return list(iter_records(results_dir, **kw))
