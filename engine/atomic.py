"""Atomic file writes: the one place that writes a file so that readers see the old file or the new one, never
half of one. Used for telemetry (engine), result records, child-process results and reports (harness).

    write_text(path, text)                 replace atomically (temp file in the same folder, fsync, os.replace)
    write_json(path, doc)                  the same, as JSON
    write_json(path, doc, exclusive=True)  create only: fails with FileExistsError if the name exists (os.link),
                                           so a stored record is never replaced

Files get mode 0644 (less the process umask): a shared results folder is readable by the team's other accounts.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

FILE_MODE = 0o644


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back (a few microseconds).
    m = os.umask(0)
    os.umask(m)
    return m


def write_bytes(path: str | os.PathLike, data: bytes, *, exclusive: bool = False) -> Path:
    """Write `data` to `path` atomically; with `exclusive`, never replace an existing file (FileExistsError)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder: give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE & ~_umask())
        if exclusive:
            os.link(tmp, path)        # fails if the name exists: the existing file is never replaced
        else:
            os.replace(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return path


def write_text(path: str | os.PathLike, text: str, *, exclusive: bool = False) -> Path:
    return write_bytes(path, text.encode("utf-8"), exclusive=exclusive)


def write_json(path: str | os.PathLike, doc: Any, *, exclusive: bool = False, indent: int | None = 2,
               default: Any = None) -> Path:
    """`doc` as JSON (UTF-8, trailing newline), written atomically."""
    text = json.dumps(doc, indent=indent, default=default) + "\n"
    return write_text(path, text, exclusive=exclusive)
