"""`research-bench` and its sub-commands: REFs resolved by run/refs.py, --machine, the default results folder,
standard output as --out, a closed pipe, and continuous's own arguments beside pytest's."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import uuid

import pytest

from llm_research_bench.harness.commands import cli
from llm_research_bench.harness.run import refs, store
from tests.harness.testdata import history_records


def _copy(rec, **changes):
    return dataclasses.replace(rec, record_id=uuid.uuid4().hex, **changes)


def test_a_ref_is_a_saved_name_a_stored_prefix_or_a_dirty_tree():
    recs = history_records()
    recs.append(_copy(recs[0], extra={"saved_as": "before", "session_id": "s1"}))
    assert refs.resolve("before", recs) == refs.Ref(name="before")
    assert refs.resolve("aaaa", recs) == refs.Ref(commit="aaaa1111aaaa", stored=True)
    assert refs.resolve("aaaa+dirty", recs) is None                  # no dirty-tree runs of it, and git knows no aaaa
    recs.append(_copy(recs[0], dirty=True))
    assert refs.resolve("aaaa+dirty", recs) == refs.Ref(commit="aaaa1111aaaa", dirty=True, stored=True)
    assert refs.resolve("no-such-ref", recs) is None
    recs.append(_copy(recs[0], commit="aaaa2222aaaa"))
    with pytest.raises(refs.RefError, match="'aaaa' matches several stored commits: aaaa1111aaaa, aaaa2222aaaa"):
        refs.resolve("aaaa", recs)


def test_the_default_results_folder_is_at_the_top_of_the_git_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("RESEARCH_BENCH_RESULTS_DIR", raising=False)
    sub = tmp_path / "repo" / "sub"
    sub.mkdir(parents=True)
    assert refs.default_results_dir(sub) == sub.resolve() / "results"           # no git: the folder itself
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    assert refs.default_results_dir(sub) == (tmp_path / "repo").resolve() / "results"
    monkeypatch.setenv("RESEARCH_BENCH_RESULTS_DIR", "elsewhere")
    assert refs.default_results_dir(sub) == refs.Path("elsewhere")


def test_compare_takes_the_machine_asked_for(tmp_path, capsys):
    results = tmp_path / "results"
    for r in history_records():
        store.append(results, r)
        if r.commit.startswith(("aaaa", "bbbb")):
            store.append(results, _copy(r, machine_fingerprint="TESTDATA-machine-b"))
    assert cli.main(["compare", "aaaa", "bbbb", "--results-dir", str(results)]) == 2
    assert "several machines have results of both commits: pass --machine" in capsys.readouterr().err
    assert cli.main(["compare", "aaaa", "bbbb", "--results-dir", str(results), "--machine", "TESTDATA-machine-b"]) == 0
    assert capsys.readouterr().out.startswith("machine TESTDATA-machine-b\n")


def test_export_to_standard_output(testdata_results_dir, tmp_path, capsys):
    out = tmp_path / "bencher.json"
    assert cli.main(["export", "--format", "bencher", "--out", str(out), "--results-dir", str(testdata_results_dir)]) == 0
    capsys.readouterr()
    assert cli.main(["export", "--format", "bencher", "--out", "-", "--results-dir", str(testdata_results_dir)]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out) == json.loads(out.read_text())
    assert cap.err.startswith("export: wrote standard output: ")


def test_a_closed_pipe_ends_the_command_quietly(testdata_results_dir):
    read, write = os.pipe()
    os.close(read)                                   # `research-bench list | head -0`: nobody reads
    try:
        r = subprocess.run([sys.executable, "-m", "llm_research_bench.harness", "list", "--results-dir",
                            str(testdata_results_dir)], stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert (r.returncode, r.stderr) == (141, "")


def test_continuous_keeps_its_own_options_and_passes_the_rest_to_pytest(monkeypatch, tmp_path, capsys):
    from llm_research_bench.harness.run import continuous
    seen = []

    def fake(s, echo):
        seen.append(s)
        return continuous.Session("r", [5], 0.05, tmp_path)          # no comparison: nothing usable
    monkeypatch.setattr(continuous, "run_continuous", fake)
    argv = ["continuous", "HEAD~1", "tests/harness", "-m", "quick", "--rounds", "3", "--research-compare=main",
            "--research-compare-fail", "execution_time_s:5%", "--results-dir", str(tmp_path), "-k", "not slow"]
    assert cli.main(argv) == 3
    s = seen[0]
    assert (s.base, s.head, s.rounds, s.max_rounds, s.warmup_runs, s.results_dir) == ("HEAD~1", "HEAD", 3, 3, 1,
                                                                                       tmp_path.resolve())
    assert s.pytest_args == ["tests/harness", "-m", "quick", "--research-compare=main", "-k", "not slow"]
    assert [t.pct for t in s.thresholds] == [5]
    assert "a side produced no usable run" in capsys.readouterr().err
    assert cli.main(["continuous", "HEAD~1", "--rounds", "0"]) == 2
    assert capsys.readouterr().err == "continuous: --research-rounds: must be at least 1, got '0'\n"
    assert cli.main(["continuous", "HEAD~1", "--max-rounds", "x"]) == 2
    assert capsys.readouterr().err == "continuous: --research-max-rounds: expected a whole number, got 'x'\n"
