"""A damaged, half-written or unwritable index cache: every case ends in a usable index and at most one warning
line saying why (rebuilt, or kept in memory), never a crash, a traceback or a temp folder left behind."""
from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from llm_research_bench.engine import index as index_mod
from llm_research_bench.engine.corpus import load_corpus
from llm_research_bench.engine.embed import shared_embedder
from llm_research_bench.engine.index import HNSWIndex
from tests.reliability.bad_input import Q, ROOT, one_line
from tests.reliability.engine_child import engine_child

TEXTS = ["Mitochondria change shape before the cell dies.", "The kidney filters the blood.",
         "Aspirin lowers the risk of heart attack.", "Smoking damages the lungs."]


@pytest.fixture
def corpus_file(tmp_path):
    f = tmp_path / "passages.jsonl"
    f.write_text("".join(json.dumps({"id": f"p{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    return f


@pytest.fixture
def cached(tmp_path, corpus_file):
    """(corpus, cache root, the index as first built and saved)."""
    corpus, cache = load_corpus(corpus_file), tmp_path / "cache"
    first = HNSWIndex.build_or_load(corpus, shared_embedder(), cache_dir=cache)
    assert not first.cache_hit and (first.path / "meta.json").exists()
    return corpus, cache, first


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def load_again(corpus, cache, caplog) -> tuple[HNSWIndex, list[str]]:
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        idx = HNSWIndex.build_or_load(corpus, shared_embedder(), cache_dir=cache)
    return idx, warnings_of(caplog)


def assert_searchable(idx: HNSWIndex) -> None:
    hits = idx.search(shared_embedder().encode(["Which organ filters blood?"])[0], k=2, ef_search=16)
    assert hits[0].passage_id == "p1"


# -- damage ------------------------------------------------------------------------------------------------------

@pytest.mark.timeout(180)
def test_hnsw_bin_with_its_first_8_bytes_overwritten_is_rebuilt_not_a_segfault(cached, corpus_file, tmp_path, caplog):
    corpus, cache, first = cached
    f = first.path / "hnsw.bin"
    f.write_bytes(b"\xde\xad\xbe\xef" * 2 + f.read_bytes()[8:])
    out = tmp_path / "t.json"
    r = engine_child("run", Q, "--quiet", "--corpus", corpus_file, "--telemetry-out", out,
                     env={"RESEARCH_BENCH_CACHE_DIR": str(cache)})
    one_line(r, r"^index cache .*: hnsw\.bin does not match its sha256 checksum \(the file is damaged\); "
                r"rebuilding it$", 0)
    tel = json.loads(out.read_text())
    assert tel["success"] is True and tel["corpus"]["index_cache_hit"] is False
    again, warned = load_again(corpus, cache, caplog)         # the rebuilt cache is whole again
    assert again.cache_hit and warned == []
    assert_searchable(again)


def _zero_middle(f) -> None:
    b = bytearray(f.read_bytes())
    mid = len(b) // 2
    b[mid:mid + 64] = bytes(64)
    f.write_bytes(bytes(b))


@pytest.mark.parametrize("damage, reason", [
    (lambda d: _zero_middle(d / "vectors.npy"), r"vectors\.npy does not match its sha256 checksum"),
    (lambda d: _zero_middle(d / "hnsw.bin"), r"hnsw\.bin does not match its sha256 checksum"),
    (lambda d: os.truncate(d / "hnsw.bin", 100), r"hnsw\.bin is 100 bytes, its manifest says [\d,]+"),
    (lambda d: (d / "meta.json").write_text("{not json"), r"meta\.json cannot be read \(.*\)"),
    (lambda d: (d / "meta.json").write_text(json.dumps({"ids": ["p0", "p1", "p2", "p3"]})),
     r"meta\.json has no manifest of checksums"),
], ids=["zeroed-vectors", "zeroed-hnsw", "truncated-hnsw", "meta-not-json", "meta-without-manifest"])
@pytest.mark.timeout(120)
def test_a_damaged_cache_is_rebuilt_with_one_warning_saying_why(cached, caplog, damage, reason):
    corpus, cache, first = cached
    damage(first.path)
    idx, warned = load_again(corpus, cache, caplog)
    assert not idx.cache_hit and len(warned) == 1, warned
    assert warned[0].startswith(f"index cache {first.path}: ") and warned[0].endswith("; rebuilding it")
    assert re.search(reason, warned[0]), warned[0]
    assert np.allclose(idx.vectors, first.vectors)
    assert_searchable(idx)
    again, warned = load_again(corpus, cache, caplog)
    assert again.cache_hit and warned == []


# -- temp folders ------------------------------------------------------------------------------------------------

_KILLED_WHILE_SAVING = """
import os, signal, sys
from pathlib import Path
import numpy as np
from llm_research_bench.engine.corpus import load_corpus
from llm_research_bench.engine.embed import shared_embedder
from llm_research_bench.engine.index import HNSWIndex
np.save = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)   # hnsw.bin is written, vectors.npy never is
HNSWIndex.build_or_load(load_corpus(sys.argv[1]), shared_embedder(), cache_dir=Path(sys.argv[2]))
"""


@pytest.mark.timeout(180)
def test_a_writer_killed_while_saving_leaves_a_miss_and_its_temp_folder_is_removed(tmp_path, corpus_file, caplog):
    cache = tmp_path / "cache"
    r = subprocess.run([sys.executable, "-c", _KILLED_WHILE_SAVING, str(corpus_file), str(cache)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == -9, r.stderr[-2000:]
    (d,) = (cache / "index").iterdir()
    (left,) = [p for p in d.iterdir() if p.name.startswith("tmp")]
    assert (left / "hnsw.bin").exists() and not (d / "meta.json").exists()
    idx, warned = load_again(load_corpus(corpus_file), cache, caplog)
    assert not idx.cache_hit and warned == []                 # a half-written cache is a plain miss
    assert sorted(p.name for p in d.iterdir()) == ["hnsw.bin", "meta.json", "vectors.npy"]


@pytest.mark.timeout(120)
def test_stale_temp_folders_are_removed_and_a_live_writers_kept(cached, caplog):
    corpus, cache, first = cached
    old = first.path / "tmpab12cd34"                          # no writer named: stale once over STALE_TMP_S old
    old.mkdir()
    (old / "hnsw.bin").write_bytes(bytes(4096))
    stale = time.time() - index_mod.STALE_TMP_S - 60
    os.utime(old, (stale, stale))
    live = first.path / f"{index_mod._temp_prefix()}live"     # this process is alive: its folder is in use
    live.mkdir()
    idx, warned = load_again(corpus, cache, caplog)
    assert idx.cache_hit and warned == []
    assert not old.exists() and live.is_dir()


# -- an unwritable cache -----------------------------------------------------------------------------------------

UNWRITABLE = (r"^index cache .*: cannot be written \((.+)\); the index is kept in memory for this run only: "
              r"set RESEARCH_BENCH_CACHE_DIR to a writable folder to cache it$")


def _read_only(cache):
    cache.mkdir()
    cache.chmod(0o555)
    if os.access(cache, os.W_OK):
        pytest.skip("this user writes into read-only folders (root): see the EROFS cases")
    return cache


def _under_a_file(cache):
    cache.write_text("a file, not a folder")
    return cache / "sub"


def _erofs(cache, monkeypatch):
    def refuse(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(cache))
    monkeypatch.setattr(index_mod.tempfile, "mkdtemp", refuse)
    return cache


@pytest.mark.parametrize("make, why", [
    (lambda c, mp: _read_only(c), "Permission denied"),
    (lambda c, mp: _under_a_file(c), "Not a directory"),
    (_erofs, "Read-only file system"),
], ids=["read-only", "under-a-file", "erofs"])
@pytest.mark.timeout(120)
def test_an_unwritable_cache_warns_once_and_the_index_in_memory_serves(tmp_path, corpus_file, caplog, monkeypatch,
                                                                         make, why):
    monkeypatch.setattr(index_mod, "_warned_unwritable", set())
    cache = make(tmp_path / "cache", monkeypatch)
    corpus = load_corpus(corpus_file)
    try:
        idx, warned = load_again(corpus, cache, caplog)
        assert not idx.cache_hit and len(warned) == 1, warned
        assert re.search(UNWRITABLE, warned[0]).group(1) == why, warned[0]
        assert_searchable(idx)
        again, warned = load_again(corpus, cache, caplog)       # once per process
        assert not again.cache_hit and warned == []
    finally:
        if cache.exists() and cache.is_dir():
            cache.chmod(0o755)


def _ro_mount_prefix(folder) -> tuple[str, ...]:
    """A command prefix that runs its child with `folder` mounted read-only (a private mount namespace)."""
    script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"'
    prefix = ("unshare", "-m", "--propagation", "private", "sh", "-c", script, str(folder))
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) to mount a read-only folder")
    probe = subprocess.run([*prefix, "sh", "-c", 'touch "$0/probe"', str(folder)], capture_output=True)
    if probe.returncode == 0 or b"Read-only file system" not in probe.stderr:
        pytest.skip("this user cannot mount a read-only folder (no mount namespace)")
    return prefix


@pytest.mark.timeout(180)
def test_a_run_on_a_read_only_cache_folder_warns_once_and_succeeds(tmp_path, corpus_file):
    cache = tmp_path / "cache"
    cache.mkdir()
    prefix = _ro_mount_prefix(cache)
    out = tmp_path / "t.json"
    r = engine_child("run", Q, "--quiet", "--corpus", corpus_file, "--telemetry-out", out,
                     env={"RESEARCH_BENCH_CACHE_DIR": str(cache)}, prefix=prefix)
    line = one_line(r, UNWRITABLE, 0)
    assert "Read-only file system" in line and "Errno" not in line
    tel = json.loads(out.read_text())
    assert tel["success"] is True and tel["corpus"]["index_cache_hit"] is False
    assert list(cache.iterdir()) == []


def test_the_warm_up_builds_a_missing_index_in_a_child_process(tmp_path, corpus_file, monkeypatch):
    """The child builds and saves it (its progress reaches this process); this process then loads it and reports
    it as built, not as a cache hit."""
    from llm_research_bench.harness.run.warmup import load_index
    monkeypatch.setenv("RESEARCH_BENCH_CACHE_DIR", str(tmp_path / "cache"))
    corpus, stages = load_corpus(corpus_file), []
    index = load_index(corpus, str(corpus_file), lambda stage, done, total: stages.append(stage))
    assert not index.cache_hit and (index.path / "meta.json").exists()
    assert stages[-2:] == ["hnsw", "saved"] and "cached" not in stages
    assert load_index(corpus, str(corpus_file)).cache_hit


def test_where_the_child_cannot_save_the_index_this_process_builds_it(tmp_path, corpus_file, monkeypatch, caplog):
    from llm_research_bench.harness.run.warmup import load_index
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("RESEARCH_BENCH_CACHE_DIR", str(blocked))
    with caplog.at_level(logging.WARNING):
        index = load_index(load_corpus(corpus_file), str(corpus_file))
    assert not index.cache_hit and len(index.ids) == len(TEXTS)
    assert len([r for r in caplog.records if "RESEARCH_BENCH_CACHE_DIR" in r.getMessage()]) == 1
