"""Refs resolved before anything runs: `continuous HEAD nosuch` is exit 2 naming `nosuch`, before any worktree; a
saved name that is also a git ref, or HEAD, is refused at save time; `continuous` warns about uncommitted changes,
says which tree each side measures and files a dirty tree's records as dirty; `compare` outside a git repository
says why it cannot resolve or order commits, and still compares stored commits named by their ids."""
from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path

import pytest

from llm_research_bench.harness.commands import continuous as command
from llm_research_bench.harness.run import store
from tests.harness.conftest import MACHINE
from tests.reliability.bad_input import COMMIT_A, COMMIT_B, bench_cli, clean, one_line, session_ran
from tests.reliability.test_bad_records import _record

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def two_commits(bench, monkeypatch):
    bench.commit("one")
    bench.commit("two")
    monkeypatch.chdir(bench.pytester.path)
    return bench


@pytest.mark.parametrize("args,name", [(["HEAD", "nosuch"], "nosuch"), (["nosuch"], "nosuch"),
                                       (["nosuch", "HEAD"], "nosuch"), (["HEAD~1", "HEAD~9"], "HEAD~9")])
def test_an_unknown_ref_is_exit_2_naming_it_before_anything_runs(two_commits, capsys, args, name):
    r = bench_cli(capsys, "continuous", *args, "--results-dir", two_commits.results)
    one_line(r, rf"^continuous: '{name}': git does not know this ref \((BASE|HEAD): a commit, branch, tag or HEAD~N", 2)
    assert len(two_commits.git("worktree", "list").splitlines()) == 1 and not two_commits.results.exists()


def test_a_head_that_is_a_path_goes_to_pytest(two_commits):
    (two_commits.pytester.path / "test_x.py").write_text("")
    args = Namespace(base="HEAD~1", head="test_x.py::test_y", pytest_args=["-m", "quick"], rounds=None,
                     max_rounds=None, warmup_runs=None, results_dir=str(two_commits.results), compare_fail=[],
                     keep_worktrees=False)
    s = command.settings(args)
    assert (s.base, s.head, s.pytest_args) == ("HEAD~1", "HEAD", ["test_x.py::test_y", "-m", "quick"])


@pytest.mark.parametrize("kind", ["branch", "tag", "HEAD"])
def test_a_saved_name_that_is_a_git_ref_is_refused_at_save_time(two_commits, kind):
    bench = two_commits
    name = {"branch": bench.git("rev-parse", "--abbrev-ref", "HEAD"), "tag": "v1", "HEAD": "HEAD"}[kind]
    if kind == "tag":
        bench.git("tag", "v1")
    bench.run_bench()
    r = session_ran(bench.run("-m", "quick", f"--research-save={name}"))
    line = one_line(r, rf"^ERROR: --research-save \(ini research_save\): (the name )?'{name}' is ", 4)
    assert "would hide" in line and "choose another name" in line and not bench.results.exists()


# -- continuous on a dirty working tree ----------------------------------------------------------------------------
def test_continuous_warns_about_uncommitted_changes_and_files_dirty_records(bench, monkeypatch):
    path = bench.pytester.path
    bench.engine_repo()
    bench.commit("head")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    (path / "engine" / "__init__.py").write_text((path / "engine" / "__init__.py").read_text() + "\n# edited\n")
    (path / "test_bench.py").write_text((path / "test_bench.py").read_text() + "\n# edited\n")
    r = bench.pytester.run(sys.executable, "-m", "llm_research_bench.harness", "continuous", "HEAD~1", "HEAD",
                           "--rounds", "1", "--warmup-runs", "0", "test_bench.py", "-m", "quick",
                           "--research-machine-class", MACHINE, "--research-results-dir", str(bench.results),
                           timeout=300)
    err = r.stderr.str()
    assert r.ret == 0 and "Traceback" not in err, err
    warning = [line for line in err.splitlines() if line.startswith("continuous: warning:")]
    assert warning == ["continuous: warning: the working tree has 2 uncommitted change(s), e.g. engine/__init__.py: "
                       "each side measures its commit's engine (1 engine change(s) are in neither side); the benches "
                       "are this working tree's; records are filed as +dirty"]
    recs = bench.records()
    assert {x.extra["continuous"]["side"] for x in recs} == {"A", "B"} and all(x.dirty for x in recs)
    assert {p.parent.name[-6:] for p in bench.results.rglob("*.json")} == {"+dirty"}


# -- compare outside git ------------------------------------------------------------------------------------------
def test_compare_outside_git_of_records_without_a_commit_says_why(tmp_path, monkeypatch, capsys):
    for _ in range(4):
        store.append(tmp_path / "results", _record(None))
    monkeypatch.chdir(tmp_path)
    r = bench_cli(capsys, "compare", "HEAD~1", "HEAD", "--results-dir", tmp_path / "results")
    one_line(r, r"^compare: 4 result record\(s\) under .*results, none of a commit \(measured outside a git "
                r"repository\): nothing to order them by; measure in a git checkout$", 2)


def test_compare_outside_git_says_git_cannot_resolve_and_compares_stored_ids(tmp_path, monkeypatch, capsys):
    for c in (COMMIT_A, COMMIT_B):
        for _ in range(2):
            store.append(tmp_path / "results", _record(c))
    monkeypatch.chdir(tmp_path)
    r = bench_cli(capsys, "compare", "HEAD~1", "HEAD", "--results-dir", tmp_path / "results")
    line = one_line(r, r"^compare: 'HEAD~1': no session was saved under this name, git does not know it", 2)
    assert f"({tmp_path} is not in a git repository: git cannot resolve refs nor order the stored commits" in line
    r = clean(bench_cli(capsys, "compare", "aaaa", "bbbb", "--results-dir", tmp_path / "results"))
    assert r.rc == 0 and "Comparison: baseline aaaaaaaaaaaa -> current bbbbbbbbbbbb" in r.out
