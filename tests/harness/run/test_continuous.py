"""`research-bench continuous`: two commits in temporary worktrees, one pytest session per side, each importing its
own commit's engine, rounds interleaved (A B, B A, ...), records under each commit, exit 1 on a regression.

The repository here is a pytester folder with a copy of the real engine/ and schemas/ committed twice; the
benches run the engine test double (tests/harness/doubles.py), which multiplies its replayed execution time by
the TEST_DOUBLE_SLOWDOWN its side's engine package defines -- so the numbers show which engine a side imported.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm_research_bench.harness.run import interleave
from tests.harness.conftest import MACHINE

ROOT = Path(__file__).resolve().parents[3]


def test_the_engine_finder_maps_only_the_engine_onto_another_checkout(tmp_path):
    other = tmp_path / "checkout"
    (other / "engine").mkdir(parents=True)
    (other / "engine" / "__init__.py").write_text("SIDE = 'other'\n")
    (other / "engine" / "extra.py").write_text("X = 42\n")
    code = ("import llm_research_bench.engine as e, llm_research_bench.engine.extra as x, "
            "llm_research_bench.harness as h; print(e.SIDE, x.X, e.__file__, h.__file__)")
    env = {**os.environ, interleave.ENGINE_ENV: str(other)}
    site = interleave.write_sitecustomize(tmp_path / "site").parent
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    side, x, engine_file, harness_file = out.split()
    assert (side, x) == ("other", "42") and Path(engine_file).parent == other.resolve() / "engine"
    assert Path(harness_file).parent == ROOT / "harness"          # the harness stays this checkout's
    with pytest.raises(interleave.SourceError, match="no engine/__init__.py"):
        interleave.install(tmp_path)


def test_each_round_runs_the_sides_in_another_order():
    assert interleave.schedule(("A", "B")) == ["A", "B", "B", "A"]
    cycle = interleave.schedule(("A", "A2", "B"))
    rounds = [tuple(cycle[i:i + 3]) for i in range(0, len(cycle), 3)]
    assert rounds[0] == ("A", "A2", "B") and len(set(rounds)) == 6
    for side in ("A", "A2", "B"):                    # every side is first, second and last equally often
        assert sorted(r.index(side) for r in rounds) == [0, 0, 1, 1, 2, 2]


def test_turns_follow_the_schedule_and_skip_the_sides_that_ended(tmp_path):
    interleave.set_turn(tmp_path, "A")
    assert interleave.whose_turn(tmp_path) == "A" and interleave.current_step(tmp_path) == 0
    assert interleave.advance(tmp_path, ("A", "B")) == "B"       # A B | B A
    assert interleave.advance(tmp_path, ("A", "B")) == "B"
    assert interleave.advance(tmp_path, ("A", "B")) == "A"
    assert interleave.advance(tmp_path, ("A", "B")) == "A"       # the next cycle
    assert interleave.current_step(tmp_path) == 4
    interleave.done_file(tmp_path, "B").touch()
    assert interleave.advance(tmp_path, ("A", "B")) == "A"       # B has ended: A's turns only
    interleave.done_file(tmp_path, "A").touch()
    assert interleave.advance(tmp_path, ("A", "B")) is None
    side = interleave.Side("r", "A", "HEAD~1", "c" * 40, tmp_path, ("A", "B", "C"))
    assert interleave.take_turn(side) < 1.0          # the others are gone: nobody to wait for


@pytest.fixture
def repo(bench, monkeypatch):
    """A git repository with a copy of the real engine and schemas (commit `base`); the test commits the other
    side. Both sides bench test_bench.py with the engine double."""
    path = bench.pytester.path
    bench.base = bench.engine_repo()
    monkeypatch.setenv("PYTHONPATH", str(ROOT))             # the sides import tests.harness.doubles
    monkeypatch.setenv("RB_DOUBLE_TIMES", "10,10.2,9.9,10.1,10.05,9.95")
    return bench


def _continuous(bench, *args):
    return bench.pytester.run(sys.executable, "-m", "llm_research_bench.harness", "continuous", *args,
                              "test_bench.py", "-m", "quick", "--research-machine-class", MACHINE,
                              "--research-results-dir", str(bench.results), timeout=300)


def _engine_commit(bench, init_addition: str, message: str) -> str:
    init = bench.pytester.path / "engine" / "__init__.py"
    init.write_text(init.read_text() + init_addition)
    return bench.commit(message)


def test_a_slower_head_fails_with_the_metric_the_change_and_the_test(repo):
    head = _engine_commit(repo, "\nTEST_DOUBLE_SLOWDOWN = 1.5\n", "slower")
    r = _continuous(repo, "HEAD~1", "--research-rounds", "5", "--research-compare-fail", "execution_time_s:10%")
    out = r.stdout.str()
    assert r.ret == 1, out + r.stderr.str()
    assert (f"REGRESSION: run[quick] execution_time_s: 10.05 -> 15.08 s (+50.0 %, worse; trimmed mean +50.0 %; threshold 10 %; "
            f"permutation p=0.00397 one-sided (5 v 5 runs, spike-trimmed))") in out
    recs = [x for x in repo.records() if not x.warmup]
    by_commit = {c: [x for x in recs if x.commit == c] for c in (repo.base, head)}
    assert [len(v) for v in by_commit.values()] == [5, 5]
    runs = {x.extra["continuous"]["run"] for x in recs}
    assert len(runs) == 1
    # each side imported its own worktree's engine (and the double saw that engine's slowdown)
    engines = {c: {x.extra["continuous"]["engine"] for x in v} for c, v in by_commit.items()}
    assert engines[repo.base] != engines[head] and all(len(e) == 1 for e in engines.values())
    assert all(e.pop().endswith("/A/engine") for e in [set(engines[repo.base])])
    assert min(x.metric("execution_time_s") for x in by_commit[head]) > 14.5
    # interleaved, each round in another order: A B, B A, A B, ...
    order = [x.extra["continuous"]["side"] for x in sorted(recs, key=lambda x: x.timestamp)]
    assert order == ["A", "B", "B", "A", "A", "B", "B", "A", "A", "B"]
    assert not list(Path(p).parent.parent for p in engines[head] if Path(p).exists())   # worktrees removed


def test_an_a_a_pair_differing_only_in_a_comment_passes(repo):
    _engine_commit(repo, "\n# a comment, nothing else\n", "comment")
    r = _continuous(repo, "HEAD~1", "HEAD", "--rounds", "5", "--compare-fail", "execution_time_s:5%")
    assert r.ret == 0, r.stdout.str() + r.stderr.str()
    out = r.stdout.str()
    assert "run[quick]  time" in out and "REGRESSION" not in out


def test_a_ref_git_does_not_know_is_a_usage_error(repo):
    r = _continuous(repo, "no-such-ref")
    assert r.ret == 2 and "'no-such-ref': git does not know this ref" in r.stderr.str()


def test_sequential_rounds_are_measured_only_while_a_gated_metric_is_undecided(repo):
    _engine_commit(repo, "\nTEST_DOUBLE_SLOWDOWN = 1.04\n", "4 % slower: within the 5 % threshold, beyond half")
    r = _continuous(repo, "HEAD~1", "--rounds", "5", "--max-rounds", "15", "--compare-fail", "execution_time_s:5%")
    out, err = r.stdout.str(), r.stderr.str()
    assert r.ret == 0, out + err
    assert "up to 15 in 3 looks (each tests at alpha 0.0167)" in err
    assert "look 1 of 3 (5 rounds a side): undecided: run[quick] execution_time_s +4.0 % (threshold 5 %); " \
           "measuring 5 more rounds a side" in err
    assert "sequential: 15 of up to 15 rounds a side, look 3 of 3, each look at alpha 0.0167" in out
    assert "gate power: with these 15 v 15 runs" in out
    recs = [x for x in repo.records() if not x.warmup]
    assert len(recs) == 30 and len({x.extra["continuous"]["run"] for x in recs}) == 1


def test_a_clear_regression_fails_at_the_first_look(repo):
    _engine_commit(repo, "\nTEST_DOUBLE_SLOWDOWN = 1.5\n", "slower")
    r = _continuous(repo, "HEAD~1", "--rounds", "5", "--max-rounds", "15", "--compare-fail", "execution_time_s:5%")
    out = r.stdout.str()
    assert r.ret == 1, out + r.stderr.str()
    assert "sequential: 5 of up to 15 rounds a side, look 1 of 3" in out and "REGRESSION: run[quick]" in out
    assert len([x for x in repo.records() if not x.warmup]) == 10
