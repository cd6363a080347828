"""HNSW retrieval index (hnswlib), cached on disk keyed by corpus content + embedding model, and verified on load.

A cache folder holds hnsw.bin, vectors.npy and meta.json. meta.json is written last and atomically; its
manifest ("files") gives the size and sha256 of the other two, and a cache is used only when both match, so a
damaged file never reaches hnswlib's native loader. A cache that fails is rebuilt, with one warning saying why.
A cache that cannot be written warns once, naming RESEARCH_BENCH_CACHE_DIR, and the index built in memory
serves the run. Temp folders left by a killed writer are removed when the cache folder is opened.

`build_or_load(..., on_progress=fn)` reports its progress as fn(stage, done, total): "cached" (loaded from the
cache), "embed" (passages embedded so far, in chunks of EMBED_CHUNK), "hnsw" (graph built), "saved"."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .atomic import open_regular, read_regular, write_json
from .corpus import Corpus
from .embed import Embedder
from .envvars import env, name as envvar_name

log = logging.getLogger(__name__)

INDEX_FORMAT = 1
#: Passages embedded per progress report during a build.
EMBED_CHUNK = 256
#: The files meta.json's manifest covers (meta.json itself is written last: it marks the cache complete).
DATA_FILES = ("hnsw.bin", "vectors.npy")
#: A temp folder older than this is a dead writer's, whatever its pid.
STALE_TMP_S = 3600.0
_warned_unwritable: set[str] = set()


def cache_root() -> Path:
    base = env("CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "llm-research-bench")
    return Path(base)


class CacheInvalid(Exception):
    """The cache folder cannot be used; the message says why (it is rebuilt)."""


@dataclass
class Hit:
    passage_index: int
    passage_id: str
    score: float   # cosine similarity


class HNSWIndex:
    def __init__(self, index, vectors: np.ndarray, ids: list[str], cache_hit: bool, path: Path):
        self.index, self.vectors, self.ids, self.cache_hit, self.path = index, vectors, ids, cache_hit, path

    @classmethod
    def build_or_load(cls, corpus: Corpus, embedder: Embedder, *, m: int = 16, ef_construction: int = 200,
                      cache_dir: Path | None = None,
                      on_progress: Callable[[str, int, int], None] | None = None) -> "HNSWIndex":
        report = on_progress or (lambda stage, done, total: None)
        root = Path(cache_dir) if cache_dir else cache_root()
        d = cls.folder(corpus, embedder, m, ef_construction, root)
        ids = [p.id for p in corpus.passages]
        remove_stale_temp(d)
        loaded = _load_cached(d, ids)
        if loaded is not None:
            report("cached", len(ids), len(ids))
            return cls(*loaded, ids, True, d)
        vectors = _embed(corpus, embedder, on_progress)
        index = _build(vectors, m, ef_construction)
        report("hnsw", len(ids), len(ids))
        try:
            save(d, index, vectors, {"ids": ids, "embedding_model": embedder.model_id})
        except Exception as e:         # whatever stops the save, the index in memory serves this run
            _warn_unwritable(root, e)
        else:
            report("saved", len(ids), len(ids))
        return cls(index, vectors, ids, False, d)

    @staticmethod
    def folder(corpus: Corpus, embedder: Embedder, m: int = 16, ef_construction: int = 200,
               root: Path | None = None) -> Path:
        """The cache folder of this corpus's index (keyed by its content, the embedding model and the graph's
        parameters); it holds a complete index when its meta.json exists."""
        key = f"{corpus.id}-{embedder.model_id}-m{m}-efc{ef_construction}-v{INDEX_FORMAT}".replace("/", "_")
        return (root or cache_root()) / "index" / key

    def search(self, query: np.ndarray, k: int, ef_search: int) -> list[Hit]:
        k = max(1, min(k, len(self.ids)))
        self.index.set_ef(max(ef_search, k))
        labels, dists = self.index.knn_query(np.asarray(query, dtype=np.float32).reshape(1, -1), k=k)
        return [Hit(int(i), self.ids[int(i)], float(1.0 - dd)) for i, dd in zip(labels[0], dists[0])]


def _embed(corpus: Corpus, embedder: Embedder, on_progress: Callable[[str, int, int], None] | None) -> np.ndarray:
    texts = [p.text for p in corpus.passages]
    if on_progress is None:
        return embedder.encode(texts)
    parts = []
    on_progress("embed", 0, len(texts))
    for i in range(0, len(texts), EMBED_CHUNK):
        parts.append(embedder.encode(texts[i:i + EMBED_CHUNK]))
        on_progress("embed", min(i + EMBED_CHUNK, len(texts)), len(texts))
    return np.concatenate(parts) if parts else embedder.encode(texts)


def _build(vectors: np.ndarray, m: int, ef_construction: int):
    import hnswlib
    index = hnswlib.Index(space="ip", dim=vectors.shape[1])
    index.init_index(max_elements=len(vectors), M=m, ef_construction=ef_construction, random_seed=42)
    index.add_items(vectors, np.arange(len(vectors)))
    return index


# -- the cache on disk -------------------------------------------------------------------------------------------

def file_digest(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a regular file (a FIFO or device is refused, never read)."""
    with open_regular(path) as fh:
        return os.fstat(fh.fileno()).st_size, hashlib.file_digest(fh, "sha256").hexdigest()


def save(d: Path, index, vectors: np.ndarray, meta: dict) -> None:
    """Write the cache into `d`: the data files through a temp folder beside them, then meta.json with their
    manifest, atomically. meta.json is removed first, so a writer killed half-way leaves a miss, never a hit."""
    d.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(), dir=d))
    try:
        index.save_index(str(tmp / "hnsw.bin"))
        np.save(tmp / "vectors.npy", vectors)
        files = {}
        for f in DATA_FILES:
            fd = os.open(tmp / f, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            size, digest = file_digest(tmp / f)
            files[f] = {"size": size, "sha256": digest}
        (d / "meta.json").unlink(missing_ok=True)
        for f in DATA_FILES:
            os.replace(tmp / f, d / f)
        write_json(d / "meta.json", {**meta, "format": INDEX_FORMAT, "files": files}, indent=None)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load_cached(d: Path, ids: list[str]):
    """(hnswlib index, vectors) from the cache folder `d` when it holds a complete cache that verifies; None for a
    miss (no warning) or a cache that fails (one warning naming the reason; the caller rebuilds it)."""
    try:
        if not all((d / f).exists() for f in ("meta.json", *DATA_FILES)):
            return None
        return load_verified(d, ids)
    except CacheInvalid as e:
        log.warning("index cache %s: %s; rebuilding it", d, e)
    except Exception as e:          # an unreadable folder, or anything unforeseen: a rebuild, never a crash
        log.warning("index cache %s: cannot be read (%s); rebuilding it", d, _why(e))
    return None


def load_verified(d: Path, ids: list[str]):
    """(hnswlib index, vectors) from `d`, after checking meta.json, the passage ids and each data file's size and
    sha256 against the manifest; CacheInvalid says what failed. hnswlib sees hnsw.bin only once it verifies."""
    import hnswlib
    try:
        meta = json.loads(read_regular(d / "meta.json").decode("utf-8"))
    except (OSError, ValueError) as e:
        raise CacheInvalid(f"meta.json cannot be read ({_why(e)})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("files"), dict):
        raise CacheInvalid("meta.json has no manifest of checksums (written by an older version)")
    if meta.get("ids") != ids:
        raise CacheInvalid("meta.json's passage ids differ from the corpus's")
    for f in DATA_FILES:
        _verify_file(d / f, meta["files"].get(f))
    try:
        vectors = np.load(d / "vectors.npy", allow_pickle=False)
    except Exception as e:
        raise CacheInvalid(f"vectors.npy cannot be loaded ({_why(e)})") from None
    if vectors.ndim != 2 or vectors.shape[0] != len(ids):
        raise CacheInvalid(f"vectors.npy has shape {vectors.shape}, not ({len(ids)}, dim)")
    index = hnswlib.Index(space="ip", dim=vectors.shape[1])
    try:
        index.load_index(str(d / "hnsw.bin"), max_elements=len(ids))
    except Exception as e:
        raise CacheInvalid(f"hnsw.bin cannot be loaded ({_why(e)})") from None
    if index.get_current_count() != len(ids):
        raise CacheInvalid(f"hnsw.bin holds {index.get_current_count()} passages, not {len(ids)}")
    return index, vectors


def _verify_file(path: Path, want) -> None:
    if not (isinstance(want, dict) and isinstance(want.get("size"), int) and isinstance(want.get("sha256"), str)):
        raise CacheInvalid(f"meta.json's manifest has no size and sha256 for {path.name}")
    try:
        size = path.stat().st_size
        if size == want["size"]:
            size, digest = file_digest(path)
    except OSError as e:
        raise CacheInvalid(f"{path.name} cannot be read ({_why(e)})") from None
    if size != want["size"]:
        raise CacheInvalid(f"{path.name} is {size:,} bytes, its manifest says {want['size']:,}")
    if digest != want["sha256"]:
        raise CacheInvalid(f"{path.name} does not match its sha256 checksum (the file is damaged)")


def _why(e: BaseException) -> str:
    """An exception as a short reason: the OS's words for an OSError, else its message (one line)."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return " ".join(str(e).split()) or type(e).__name__


def _warn_unwritable(root: Path, e: Exception) -> None:
    """One warning per cache root and process: the cache cannot be written, and what to do about it."""
    if str(root) in _warned_unwritable:
        return
    _warned_unwritable.add(str(root))
    log.warning("index cache %s: cannot be written (%s); the index is kept in memory for this run only: set %s "
                "to a writable folder to cache it", root, _why(e), envvar_name("CACHE_DIR"))


# -- temp folders -------------------------------------------------------------------------------------------------

def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:64] or "host"


def _temp_prefix() -> str:
    """tmp-<pid>-<host>-: a temp folder names its writer, so a dead writer's folder can be told apart."""
    return f"tmp-{os.getpid()}-{_host()}-"


def _writer_dead(name: str) -> bool:
    """Whether the folder's writer (tmp-<pid>-<host>-...) was a process of this host that no longer runs."""
    parts = name.split("-")
    if len(parts) < 4 or parts[0] != "tmp" or parts[2] != _host() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):      # it runs under another user (EPERM), or the pid is out of range
        return False
    return False


def remove_stale_temp(d: Path) -> None:
    """Remove the temp folders in the cache folder `d` that no writer will finish: their writer is dead, or they
    are older than STALE_TMP_S. Never raises (a folder that cannot be listed or removed is left)."""
    try:
        entries = [p for p in d.iterdir() if p.name.startswith("tmp")]
    except OSError:
        return
    now = time.time()
    for p in entries:
        try:
            st = p.lstat()
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and (now - st.st_mtime > STALE_TMP_S or _writer_dead(p.name)):
            shutil.rmtree(p, ignore_errors=True)
