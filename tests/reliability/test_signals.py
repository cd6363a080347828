"""A stopped `research-bench continuous`, with real processes: SIGTERM, SIGINT or SIGHUP, to the whole process group
or to the main process alone. Afterwards no process of the session is alive, `git worktree list` holds the main
checkout only, the temp folders are gone (or named, with --keep-worktrees), the records measured so far are kept,
and one line on standard error says so, with exit status 128 + the signal's number, and no traceback.

The repository is a pytester folder with a copy of the real engine and schemas; both sides bench the engine double
(tests/harness/doubles.py) in its `sleep` mode, so that the session is mid-measurement when the signal comes.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.harness.conftest import MACHINE

ROOT = Path(__file__).resolve().parents[2]

@pytest.fixture
def repo(bench, monkeypatch):
    """A git repository with a copy of the real engine and schemas, committed twice (the second: a comment)."""
    path = bench.pytester.path
    bench.engine_repo()
    init = path / "engine" / "__init__.py"
    init.write_text(init.read_text() + "\n# a comment\n")
    bench.commit("head")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))             # the sides import tests.harness.doubles
    monkeypatch.setenv("RB_DOUBLE_MODE", "sleep")
    monkeypatch.setenv("RB_DOUBLE_SLEEP", "0.4")
    monkeypatch.setenv("TMPDIR", str(path / "tmp"))         # the session's temp folders, where the test sees them
    (path / "tmp").mkdir()
    return bench


def _record_files(results: Path) -> list[Path]:
    return sorted(results.rglob("*.json")) if results.exists() else []


def _start(repo, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "llm_research_bench.harness", "continuous", "HEAD~1", "HEAD", *extra,
         "--rounds", "200", "--warmup-runs", "0", "--research-results-dir", str(repo.results),
         "test_bench.py", "-m", "quick", "--research-machine-class", MACHINE],
        cwd=repo.pytester.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _sides(p: subprocess.Popen) -> list[psutil.Process]:
    try:
        return [c for c in psutil.Process(p.pid).children(recursive=True) if "pytest" in " ".join(c.cmdline())]
    except psutil.Error:
        return []


def _mid_measurement(repo, p: subprocess.Popen, records: int = 3, timeout: float = 240) -> list[psutil.Process]:
    """Wait until both sides run and `records` records are stored; the session's processes then."""
    t0 = time.monotonic()
    while len(_record_files(repo.results)) < records or len(_sides(p)) < 2:
        assert p.poll() is None, p.communicate()
        assert time.monotonic() - t0 < timeout, "the session did not get under way in time"
        time.sleep(0.2)
    return psutil.Process(p.pid).children(recursive=True)


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    return [c for c in procs if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def _stop(repo, sig: int, *, group: bool, extra: tuple = ()) -> tuple[int, str, list, int]:
    """Start a session, signal it mid-measurement; (exit status, stderr, processes still alive 10 s later, records
    stored when the signal was sent)."""
    p = _start(repo, *extra)
    try:
        procs = _mid_measurement(repo, p)
        before = len(_record_files(repo.results))
        os.killpg(p.pid, sig) if group else os.kill(p.pid, sig)
        _, err = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _alive(procs) and time.monotonic() < deadline:
        time.sleep(0.2)
    return p.returncode, err, _alive(procs), before


def _worktrees(repo) -> list[str]:
    return repo.git("worktree", "list").splitlines()


@pytest.mark.parametrize("sig,group", [(signal.SIGTERM, False), (signal.SIGTERM, True), (signal.SIGINT, False),
                                       (signal.SIGINT, True), (signal.SIGHUP, False)],
                         ids=["sigterm-main", "sigterm-group", "sigint-main", "sigint-group", "sighup-main"])
def test_a_stopped_session_cleans_up_and_keeps_its_records(repo, sig, group):
    rc, err, alive, before = _stop(repo, sig, group=group)
    assert rc == 128 + sig, err
    assert "Traceback" not in err
    stopped = [line for line in err.splitlines() if line.startswith("continuous: stopped by")]
    assert len(stopped) == 1, err
    name = signal.Signals(sig).name
    assert re.fullmatch(rf"continuous: stopped by {name}: record\(s\) measured so far \(\d+ of A, \d+ of B\) kept "
                        rf"under {re.escape(str(repo.results))}; worktrees and temp folders removed", stopped[0])
    assert stopped[0] == err.rstrip().splitlines()[-1]                   # the last word, after the sides' output
    assert not alive, [c.cmdline() for c in alive]                       # no process outlives the command
    assert len(_worktrees(repo)) == 1                                    # the main checkout only
    assert not list((repo.pytester.path / "tmp").iterdir())             # worktrees, logs and baton removed
    assert len(_record_files(repo.results)) >= before                    # nothing measured is lost
    kept = [int(n) for n in re.findall(r"(\d+) of [AB]", stopped[0])]
    assert sum(kept) == len(repo.records()) >= before
    assert not list(repo.results.rglob(".*"))                           # no half-written record


def test_with_keep_worktrees_the_line_names_what_was_kept(repo):
    rc, err, alive, _ = _stop(repo, signal.SIGTERM, group=False, extra=("--keep-worktrees",))
    assert rc == 143 and "Traceback" not in err and not alive
    line = err.rstrip().splitlines()[-1]
    m = re.fullmatch(r"continuous: stopped by SIGTERM: .* kept under \S+; worktrees kept under (\S+), logs under (\S+) "
                     r"\(--keep-worktrees; remove them with `git worktree remove`\)", line)
    assert m, err
    worktrees, logs = Path(m.group(1)), Path(m.group(2))
    assert (worktrees / "A" / "engine").is_dir() and (worktrees / "B" / "engine").is_dir() and logs.is_dir()
    assert len(_worktrees(repo)) == 3
    for side in ("A", "B"):
        repo.git("worktree", "remove", "--force", str(worktrees / side))


def test_a_side_whose_continuous_process_died_ends_by_itself(repo):
    """SIGKILL leaves no chance to clean up: the sides still end (the parent-death signal, or the baton wait
    noticing its parent is gone), so nothing polls a baton forever. The test prunes the worktrees."""
    rc, err, alive, _ = _stop(repo, signal.SIGKILL, group=False)
    assert rc == -signal.SIGKILL
    assert not alive, [c.cmdline() for c in alive]
    shutil.rmtree(repo.pytester.path / "tmp")
    repo.git("worktree", "prune")
    assert len(_worktrees(repo)) == 1


def test_the_baton_wait_of_an_orphaned_side_ends_it(tmp_path):
    """A side's turn-taking, in a process whose recorded parent is not its parent: it sends itself SIGTERM."""
    code = ("import os, pathlib\nfrom llm_research_bench.harness.run import interleave\n"
            "d = pathlib.Path(os.environ['BATON']); interleave.set_turn(d, 'B')\n"
            "interleave.take_turn(interleave.Side('r', 'A', 'HEAD', 'c' * 40, d, ('A', 'B'), 1))\n"
            "print('still waiting')")
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, "BATON": str(tmp_path)},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == -signal.SIGTERM and "still waiting" not in r.stdout and "Traceback" not in r.stderr
