"""`research-bench run`, `find` and `regressions` on a small fixture repository: a copy of the real engine committed
as a base, then A, its identical twin A2, B that adds 4 ms per sampled token (history_double.py reads
TEST_DOUBLE_TPOT_ADD_S from each side's engine) and B2 after it; the benches run the engine double."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from llm_research_bench.harness.records import is_usable
from tests.harness.conftest import MACHINE

ROOT = Path(__file__).resolve().parents[3]

BENCH = '''
import pytest
pytestmark = pytest.mark.pipeline

@pytest.fixture
def research_runner():
    return "tests.harness.commands.history_double:replay"

def test_run(research_bench, profile):
    research_bench.run()
'''


def _schema(name: str) -> dict:
    return json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text())


def _engine_commit(bench, addition: str, message: str) -> str:
    init = bench.pytester.path / "engine" / "__init__.py"
    init.write_text(init.read_text() + addition)
    return bench.commit(message)


def _history(bench, monkeypatch, slowdown: bool) -> dict[str, str]:
    """The base commit and A, A2, B (4 ms per token slower when `slowdown`), B2 after it: name -> SHA."""
    path = bench.pytester.path
    shutil.copytree(ROOT / "engine", path / "engine", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "schemas", path / "schemas", ignore=shutil.ignore_patterns("__pycache__"))
    bench.pytester.makepyfile(test_bench=BENCH)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))             # the sessions import tests.harness.*
    monkeypatch.setenv("RB_DOUBLE_TIMES", "10,10.2,9.9,10.1,10.05,9.95")
    shas = {"base": bench.commit("base")}
    shas["A"] = _engine_commit(bench, "\n# A\n", "A: a comment")
    shas["A2"] = _engine_commit(bench, "\n# A2\n", "A2: the same code as A")
    shas["B"] = _engine_commit(bench, "\nTEST_DOUBLE_TPOT_ADD_S = 0.004\n" if slowdown else "\n# B\n",
                               "B: 4 ms more per sampled token" if slowdown else "B: a comment")
    shas["B2"] = _engine_commit(bench, "\n# B2\n", "B2: after B")
    return shas


def _command(bench, *args, timeout: float = 300):
    return bench.pytester.run(sys.executable, "-m", "llm_research_bench.harness", *args, "test_bench.py",
                              "-m", "quick", "--research-machine-class", MACHINE, "--research-remeasure", "0",
                              "--research-results-dir", str(bench.results), timeout=timeout)


def _worktrees(bench) -> list[str]:
    return [x for x in bench.git("worktree", "list", "--porcelain").splitlines() if x.startswith("worktree ")]


def _regressions(bench, *args):
    return bench.pytester.run(sys.executable, "-m", "llm_research_bench.harness", "regressions", "--results-dir",
                              str(bench.results), "--metric", "tpot_s:10%", *args)


def test_run_stores_every_commit_and_a_second_call_skips_them_all(bench, monkeypatch):
    shas = _history(bench, monkeypatch, slowdown=True)
    r = _command(bench, "run", "HEAD~4..HEAD", "--research-rounds", "3", "--format", "json")
    assert r.ret == 0, r.stdout.str() + r.stderr.str()
    out = json.loads(r.stdout.str())
    jsonschema.validate(out, _schema("history-run"))
    assert [c["commit"] for c in out["commits"]] == [shas[k] for k in ("A", "A2", "B", "B2")]
    assert {c["status"] for c in out["commits"]} == {"measured"}
    err = r.stderr.str()
    assert f'commit 3/4 {shas["B"][:7]} "B: 4 ms more per sampled token" | ' in err
    assert "round 2/3" in err
    runs = [x for x in bench.records() if is_usable(x)]           # contended runs are not measured again here
    assert {c: sum(x.commit == c for x in runs) for c in shas.values()} == {
        shas["base"]: 0, shas["A"]: 3, shas["A2"]: 3, shas["B"]: 3, shas["B2"]: 3}
    assert len(_worktrees(bench)) == 1                                  # every temporary worktree removed
    again = _command(bench, "run", "HEAD~4..HEAD", "--research-rounds", "3", "--skip-existing")
    assert again.ret == 0, again.stderr.str()
    assert again.stderr.str().count("already measured on this machine with these settings: skipped") == 4
    assert len([x for x in bench.records() if is_usable(x)]) == 12

    reg = _regressions(bench, "--format", "json")
    assert reg.ret == 0, reg.stderr.str()
    steps = json.loads(reg.stdout.str())
    jsonschema.validate(steps, _schema("regressions"))
    assert [(s["commit"], s["previous_commit"], s["metric"]) for s in steps["steps"]] == [
        (shas["B"][:12], shas["A2"][:12], "tpot_s")]                   # B's step, none on the A / A2 pair
    step = steps["steps"][0]
    assert step["subject"] == "B: 4 ms more per sampled token" and step["change_pct"] > 30 and step["p"] < 0.05
    text = _regressions(bench).stdout.str()
    assert text.startswith(f"{shas['B'][:12]} run[quick] tpot_s: 0.0119 s -> 0.0159 s (+33.9 %, permutation p=")
    assert text.rstrip().endswith('"B: 4 ms more per sampled token"') and len(text.splitlines()) == 1


def test_find_names_the_commit_that_added_4_ms_per_token(bench, monkeypatch):
    shas = _history(bench, monkeypatch, slowdown=True)
    r = _command(bench, "find", "HEAD~4..HEAD", "--metric", "tpot_s:10%", "--format", "json")
    assert r.ret == 0, r.stdout.str() + r.stderr.str()
    out = json.loads(r.stdout.str())
    jsonschema.validate(out, _schema("find"))
    assert out["found"]["commit"] == shas["B"] and out["found"]["p"] < 0.05 and out["found"]["change_pct"] > 30
    assert [s["commit"] for s in out["steps"]] == [shas["B2"], shas["A2"], shas["B"]]      # log2(4) + 1 steps
    assert [s["verdict"] for s in out["steps"]] == ["bad", "good", "bad"]
    assert len(_worktrees(bench)) == 1


def test_find_names_none_when_the_slowdown_is_taken_out(bench, monkeypatch):
    _history(bench, monkeypatch, slowdown=False)
    r = _command(bench, "find", "HEAD~4..HEAD", "--metric", "tpot_s:10%")
    out = r.stdout.str()
    assert r.ret == 1, out + r.stderr.str()
    assert "no commit found where tpot_s got worse by more than 10 %" in out and "1 step(s)" in out


def test_ctrl_c_keeps_what_was_measured_and_removes_the_worktrees(bench, monkeypatch):
    _history(bench, monkeypatch, slowdown=False)
    monkeypatch.setenv("RB_DOUBLE_MODE", "sleep")              # each run lasts long enough to be interrupted
    monkeypatch.setenv("RB_DOUBLE_SLEEP", "1")
    p = subprocess.Popen([sys.executable, "-m", "llm_research_bench.harness", "run", "--last", "2",
                          "--research-rounds", "1", "test_bench.py", "-m", "quick", "--research-machine-class",
                          MACHINE, "--research-remeasure", "0", "--research-results-dir", str(bench.results)],
                         cwd=bench.pytester.path, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    lines = []
    for line in p.stderr:                                  # type: ignore[union-attr]
        lines.append(line)
        if line.startswith("commit 2/2 ") and "warm-up 1" in line:
            p.send_signal(signal.SIGINT)
            break
    rest = p.communicate(timeout=60)[1]
    assert p.returncode == 130, "".join(lines) + rest
    assert "interrupted after 1 of 2 commit(s); what was measured is kept, the worktrees removed" in rest
    assert len([x for x in bench.records() if is_usable(x)]) == 1       # commit 1's round
    time.sleep(0.2)
    assert len(_worktrees(bench)) == 1


def test_usage_errors_exit_2(bench, monkeypatch):
    _history(bench, monkeypatch, slowdown=False)
    assert _command(bench, "run").ret == 2
    r = _command(bench, "find", "HEAD~4..HEAD", "--metric", "no_such_metric:5%")
    assert r.ret == 2 and "unknown metric 'no_such_metric'" in r.stderr.str()
    r = _command(bench, "run", "no-such-ref..HEAD")
    assert r.ret == 2 and "'no-such-ref': git does not know this ref" in r.stderr.str()
