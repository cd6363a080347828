"""Allocation capture with memray around one run, and the top allocators at its high-water mark (shown when a run
goes over its memory limit)."""
from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path


def tracker(path: str | None):
    """A memray.Tracker writing to `path` (a no-op context without a path)."""
    if not path:
        return nullcontext()
    import memray
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).unlink(missing_ok=True)
    return memray.Tracker(path)


def _where(record) -> str:
    try:
        stack = record.stack_trace(max_stacks=2)
    except Exception:
        stack = []
    return " <- ".join(f"{fn} ({_short(file)}:{line})" for fn, file, line in stack) or "(no Python frame)"


def _short(path: str) -> str:
    """`path` relative to this folder or site-packages."""
    for marker in (str(Path.cwd()) + "/", "site-packages/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def top_allocators(path: str | os.PathLike, n: int = 5) -> list[str]:
    """The largest allocation sites live at the capture's high-water mark, one line each."""
    import memray
    try:
        reader = memray.FileReader(str(path))
    except Exception as e:   # a capture cut short by a crash cannot always be read
        return [f"(memray capture {path} unreadable: {type(e).__name__}: {e})"]
    try:
        recs = sorted(reader.get_high_watermark_allocation_records(merge_threads=True), key=lambda r: r.size,
                      reverse=True)[:n]
        return [f"{r.size / 2**20:8.1f} MB in {r.n_allocations} allocation(s): {_where(r)}" for r in recs]
    finally:
        reader.close()
