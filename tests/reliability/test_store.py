"""The results store checked before the run: a read-only results folder, a folder under a file, a machine folder
that is a file, a disk without room; each is one usage line before anything runs (a bench session: exit 4;
`research-bench continuous`: exit 2). A record the store cannot take at the end (a full disk, simulated by a test
double of the writer) goes to a fallback file that the summary names, and the summary still shows."""
from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from llm_research_bench.harness.run import store
from tests.reliability.bad_input import bench_cli, clean, one_line, session_ran
from tests.reliability.test_bad_records import _record
from tests.reliability.bad_input import COMMIT_A

MACHINE_ID = "m1"


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _session(bench, results: Path, *extra: str):
    bench.run_bench()
    before = _files(bench.pytester.path.parent)
    r = session_ran(bench.pytester.runpytest("--research-machine-class", "linux-x86_64-2c", "--research-results-dir",
                                             str(results), "-p", "no:cacheprovider", "-m", "quick", *extra))
    new = _files(bench.pytester.path.parent) - before
    return r, new


@pytest.fixture
def machine(monkeypatch):
    from llm_research_bench.harness.run import environment
    monkeypatch.setenv("RESEARCH_BENCH_MACHINE_ID", MACHINE_ID)
    environment.machine_info.cache_clear()
    yield MACHINE_ID
    environment.machine_info.cache_clear()


def _unwritable(tmp_path: Path, case: str) -> tuple[Path, str]:
    """A results folder the store cannot use, and the words its message has."""
    if case == "read-only":
        if os.geteuid() == 0:                     # root writes anywhere mode bits forbid: a read-only filesystem
            return Path("/proc/self/research-results"), "is not writable"
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        return ro / "results", "is not writable"
    if case == "folder-under-a-file":
        (tmp_path / "a-file").write_text("x")
        return tmp_path / "a-file" / "results", "is a file"
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / MACHINE_ID).write_text("x")        # the machine folder is a file
    return tmp_path / "results", f"the machine folder {tmp_path / 'results' / MACHINE_ID} is a file"


CASES = ["read-only", "folder-under-a-file", "machine-folder-a-file"]


@pytest.mark.parametrize("case", CASES)
def test_an_unusable_store_stops_a_session_before_it_runs(bench, machine, tmp_path, case):
    results, words = _unwritable(tmp_path, case)
    r, new = _session(bench, results)
    line = one_line(r, r"--research-results-dir \(ini research_results_dir\): ", 4)
    assert words in line and ("--research-results-dir" in line.split(": ", 1)[1] or "remove it" in line)
    assert "collected" not in r.out and "passed" not in r.out                    # nothing ran
    assert not {p for p in new if p.suffix == ".json"}                          # nothing written anywhere


@pytest.mark.parametrize("case", CASES)
def test_an_unusable_store_stops_continuous_before_any_worktree(bench, machine, tmp_path, monkeypatch, capsys, case):
    results, words = _unwritable(tmp_path, case)
    bench.commit("one")
    bench.commit("two")
    monkeypatch.chdir(bench.pytester.path)
    r = bench_cli(capsys, "continuous", "HEAD~1", "HEAD", "--results-dir", results)
    line = one_line(r, r"^continuous: ", 2)
    assert words in line
    assert len(bench.git("worktree", "list").splitlines()) == 1


def test_a_disk_without_room_is_refused_before_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10 << 30, 10 << 30, 4096))
    with pytest.raises(store.StoreError, match=r"has no room for a record \(4 KiB free on its disk\): free some "
                                               r"space or pass another folder"):
        store.check_store(tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_a_usable_store_passes_and_is_not_created_by_the_check(tmp_path):
    store.check_store(tmp_path / "new" / "results", MACHINE_ID)
    assert not (tmp_path / "new").exists() and not list(tmp_path.iterdir())


# -- a record the store cannot take -----------------------------------------------------------------------------------
def enospc_writer_double(results_dir, rec):
    """Test double of the store's writer: the disk is full."""
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(Path(results_dir) / "rec.json"))


def test_a_record_the_store_cannot_take_goes_to_the_fallback_file(tmp_path, monkeypatch):
    monkeypatch.setenv(store.FALLBACK_ENV, str(tmp_path / "fallback"))
    rec = _record(COMMIT_A)
    saved = store.append_or_fallback(tmp_path / "results", rec, writer=enospc_writer_double)
    assert saved.error == f"No space left on device: {tmp_path / 'results' / 'rec.json'}"
    assert saved.path == store.fallback_file() and saved.path.parent == tmp_path / "fallback"
    assert [json.loads(x)["record_id"] for x in saved.path.read_text().splitlines()] == [rec.record_id]
    assert saved.line == (f"a record could not be written to the store (No space left on device: "
                          f"{tmp_path / 'results' / 'rec.json'}): kept in {saved.path} (one JSON line a record)")
    again = store.append_or_fallback(tmp_path / "results", _record(COMMIT_A), writer=enospc_writer_double)
    assert again.path == saved.path and len(saved.path.read_text().splitlines()) == 2     # appended, not replaced
    assert not (tmp_path / "results").exists()


def test_a_session_whose_record_cannot_be_written_keeps_it_and_still_shows_its_summary(bench, tmp_path, monkeypatch):
    monkeypatch.setenv(store.FALLBACK_ENV, str(tmp_path / "fallback"))
    monkeypatch.setattr(store, "append", enospc_writer_double)      # the session runs in this process
    r, new = _session(bench, bench.results)
    clean(r)
    assert r.rc == 0, r.out[-2000:]
    fallback = store.fallback_file()
    assert f"results store: a record could not be written to the store (No space left on device: " in r.out
    assert f"kept in {fallback} (one JSON line a record)" in r.out
    assert "0 record(s) appended under" in r.out and "run[quick]" in r.out      # the summary table still shows
    kept = [json.loads(x) for x in fallback.read_text().splitlines()]
    assert len(kept) == 1 and kept[0]["outcome"] == "passed"                    # nothing measured is lost
    assert not bench.results.exists() and {p.parent for p in new} == {fallback.parent}
