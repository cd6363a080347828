"""Safe file I/O, in one place: atomic writes (readers see the old file or the new one, never half of one) and
bounded reads that never block. Used for telemetry (engine), result records, child-process results, reports,
profiles files and corpora (harness and engine).

    write_text(path, text)                 replace atomically (temp file in the same folder, fsync, os.replace)
    write_json(path, doc)                  the same, as JSON
    write_json(path, doc, exclusive=True)  create only: fails with FileExistsError if the name exists (os.link),
                                           so a stored record is never replaced
    check_writable(path)                   before long work: can `path` be written? (a folder, an unwritable
                                           folder, a parent that is a file: NotWritable, naming the fix)
    open_regular(path), read_regular(path, max_bytes)
                                           open/read a regular file only: a FIFO, device or folder is refused
                                           (NotRegularFile) without blocking, and a file over max_bytes is refused
                                           (FileTooLarge) without reading it

Files get mode 0644 (less the process umask): a shared results folder is readable by the team's other accounts.
The errors are OSError subclasses, so callers that handle OSError handle them too.
"""
from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

FILE_MODE = 0o644


class NotRegularFile(OSError):
    """The path is a FIFO, socket, device or folder: it is not read (a FIFO would block the reader)."""


class FileTooLarge(OSError):
    """The file is larger than the reader's limit: it is not read (it would cost memory to skip)."""


class NotWritable(OSError):
    """A file cannot be written at this path; the message names the path and the fix."""


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


def check_writable(path: str | os.PathLike, *, example: str = "out.json") -> Path:
    """Check, before long work, that `path` can be written by write_*; raise NotWritable naming the fix
    (`example`: a file name to suggest inside a folder given instead of a file)."""
    path = Path(path)
    if path.is_dir():
        raise NotWritable(f"{path} is a folder: give a file name, e.g. {path / example}")
    if path.exists() and not path.is_file():
        raise NotWritable(f"{path} is not a regular file (a FIFO or device): give a file name")
    parent = path.parent
    while not parent.exists():                    # write_* creates missing folders: check the first that exists
        parent = parent.parent
    if not parent.is_dir():
        raise NotWritable(f"{parent} is a file, so {path} cannot be created: choose another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise NotWritable(f"the folder {parent} is not writable: choose another path or fix its "
                                        f"permissions")
    return path


def size_text(n: int) -> str:
    """A file size as people read it: bytes, KiB or MiB."""
    if n >= 2**20:
        return f"{n / 2**20:,.1f} MiB".replace(".0 MiB", " MiB")
    return f"{n / 2**10:,.1f} KiB".replace(".0 KiB", " KiB") if n >= 2**10 else f"{n} bytes"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | os.PathLike, *, max_bytes: int | None = None):
    """`path` opened for binary reading, if it is a regular file (of at most `max_bytes`). Opening never blocks:
    O_NONBLOCK, then fstat on the open descriptor (no race with a file swapped in between)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:
        raise NotRegularFile(f"{path} is a folder, not a file") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(f"{path} is {_kind(st.st_mode)}, not a regular file")
        if max_bytes is not None and st.st_size > max_bytes:
            raise FileTooLarge(f"{path} is {size_text(st.st_size)}, over the {size_text(max_bytes)} limit")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike, *, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file of at most `max_bytes` (NotRegularFile, FileTooLarge otherwise). A file that
    grows past the limit while it is read is refused too."""
    with open_regular(path, max_bytes=max_bytes) as fh:
        data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise FileTooLarge(f"{path} grew over the {size_text(max_bytes)} limit while it was read")
    return data
