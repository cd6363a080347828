"""The parts of `run`, `find` and `regressions` that need no bench session: the range's commits on a tiny git
repository, spreading --steps, the bisection's steps and its undecided stop (a test double judges), change points
confirmed by the gate, and the regressions list's rows."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from llm_research_bench.harness.analysis import changepoints
from llm_research_bench.harness.analysis.measures import Point
from llm_research_bench.harness.analysis.names import Threshold
from llm_research_bench.harness.report import regressions as report
from llm_research_bench.harness.run import history
from llm_research_bench.harness.run.continuous import ContinuousError

TPOT = Threshold("tpot_s", 10.0, "lower")


@pytest.fixture
def repo(tmp_path):
    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=tmp_path,
                              capture_output=True, text=True, check=True).stdout.strip()
    git("init", "-q")
    for i in range(6):
        (tmp_path / "f").write_text(str(i))
        git("add", "f")
        git("commit", "-q", "-m", f"c{i}")
    return tmp_path


def test_a_range_is_first_parent_commits_after_its_good_end(repo):
    good, commits = history.range_commits(repo, "HEAD~4..HEAD")
    assert good.subject == "c1" and [c.subject for c in commits] == ["c2", "c3", "c4", "c5"]
    good, commits = history.range_commits(repo, None, last=2)
    assert good.subject == "c3" and [c.subject for c in commits] == ["c4", "c5"]
    good, commits = history.range_commits(repo, "HEAD~5,HEAD~2,HEAD")
    assert good.subject == "c0" and [c.subject for c in commits] == ["c3", "c5"]
    assert history.range_commits(repo, None, last=10)[0] is None          # the whole history: no good end
    with pytest.raises(ContinuousError, match="holds no commits"):
        history.range_commits(repo, "HEAD..HEAD")
    with pytest.raises(ContinuousError, match="'nope': git does not know this ref"):
        history.range_commits(repo, "nope..HEAD")


def test_steps_spread_evenly_with_both_ends():
    assert history.spread(list(range(40)), 5) == [0, 10, 20, 29, 39]
    assert history.spread(list(range(3)), 5) == [0, 1, 2] and history.spread(list(range(3)), 1) == [2]


def _commits(n):
    return [history.Commit(f"{i:040x}", f"c{i}", "2026-12-01T00:00:00+00:00") for i in range(n)]


def _fake_judge(monkeypatch, verdicts):
    """Judge commit i by verdicts(i); the commits judged, in order."""
    seen = []

    def judge(good, c, s, threshold, echo, max_rounds=None):
        seen.append(int(c.sha, 16))
        return history.Judged(c, verdicts(int(c.sha, 16)), "why", "interleaved", 1.0)
    monkeypatch.setattr(history, "judge", judge)
    return seen


@pytest.mark.parametrize("n, first_bad", [(40, 17), (40, 0), (40, 39), (4, 2), (1, 0)])
def test_bisection_finds_the_first_bad_commit_in_about_log2_steps(monkeypatch, n, first_bad, tmp_path):
    commits = _commits(n + 1)
    seen = _fake_judge(monkeypatch, lambda i: history.BAD if i >= first_bad + 1 else history.GOOD)
    out = history.bisect(commits[0], commits[1:], history.RangeSettings(tmp_path), TPOT, lambda line: None)
    assert out.found.commit == commits[first_bad + 1] and not out.stopped
    assert seen[0] == n and len(seen) <= 1 + int(np.ceil(np.log2(n)))


def test_no_bad_last_commit_is_nothing_found_in_one_step(monkeypatch, tmp_path):
    commits = _commits(9)
    seen = _fake_judge(monkeypatch, lambda i: history.GOOD)
    out = history.bisect(commits[0], commits[1:], history.RangeSettings(tmp_path), TPOT, lambda line: None)
    assert out.found is None and seen == [8] and not out.stopped


def test_an_undecided_step_stops_the_search_and_says_where(monkeypatch, tmp_path):
    commits = _commits(9)
    _fake_judge(monkeypatch, lambda i: history.UNDECIDED if i == 4 else history.BAD if i > 4 else history.GOOD)
    out = history.bisect(commits[0], commits[1:], history.RangeSettings(tmp_path), TPOT, lambda line: None)
    assert out.found is None and [s.verdict for s in out.steps] == ["bad", "undecided"]
    assert out.stopped == (f"{commits[4].short} is undecided: the first worse commit, if any, lies after "
                           f"{commits[0].short} and up to {commits[8].short}")


def _points(medians, runs=3, sd=0.02, seed=1):
    rng = np.random.default_rng(seed)
    return [Point(f"{i:012x}", list(m * np.exp(sd * rng.standard_normal(runs))), f"2026-12-01T00:{i:02d}:00")
            for i, m in enumerate(medians)]


def test_a_step_is_found_where_it_is_and_confirmed_by_the_gate():
    pts = _points([0.0117] * 8 + [0.0157] * 8)
    steps = changepoints.find_steps(pts, series="run[quick]", metric="tpot_s", threshold=TPOT)
    assert [(s.index, s.previous_commit) for s in steps] == [(8, pts[7].commit)]
    s = steps[0]
    assert s.confirmed and 30 < s.change_pct < 40 and s.p < 0.01 and s.n_before == s.n_after == 15


def test_an_a_a_history_and_a_step_below_the_threshold_give_no_steps():
    assert changepoints.find_steps(_points([0.0117] * 16), series="s", metric="tpot_s", threshold=TPOT) == []
    small = _points([0.0117] * 8 + [0.0117 * 1.05] * 8, sd=0.005)     # real, but within the 10 % threshold
    cuts = changepoints.commit_cuts(small)
    assert 8 in cuts                                                   # the detector sees it; the gate does not fail it
    assert not any(s.confirmed for s in changepoints.confirm(small, cuts, series="s", metric="tpot_s",
                                                             threshold=TPOT))
    better = _points([0.0157] * 8 + [0.0117] * 8)                        # a step for the better is no regression
    assert changepoints.find_steps(better, series="s", metric="tpot_s", threshold=TPOT) == []


def test_the_regressions_rows_link_each_step_to_its_chart():
    pts = _points([0.0117] * 8 + [0.0157] * 8)
    steps = [changepoints.Step(**{**s.__dict__, "machine": "m1"})
             for s in changepoints.find_steps(pts, series="run[quick]", metric="tpot_s", threshold=TPOT)]
    rows = report.rows(steps, {pts[8].commit: "B: slower"})
    assert rows[0]["chart"] == "chart-m1-run-quick-tpot_s" and rows[0]["subject"] == "B: slower"
    assert f'<a href="#chart-m1-run-quick-tpot_s">TPOT · tpot_s</a></td><td class="l">run[quick]</td>' \
           f'<td class="l">{pts[8].commit}</td><td class="l">0.0117 s → 0.0156 s' in report.html_table(rows)
    assert report.text([]) == "no confirmed steps for the worse in the stored history"


def _stored(commit, factors):
    from tests.harness.testdata import record, varied_telemetry
    return [record(varied_telemetry(f), commit=commit, ts=f"2026-12-01T00:00:0{i}+00:00") for i, f in enumerate(factors)]


@pytest.mark.parametrize("slower, verdict", [(1.34, history.BAD), (1.0, history.GOOD)])
def test_a_step_is_judged_on_stored_runs_where_they_decide(monkeypatch, tmp_path, slower, verdict):
    good, c = _commits(2)
    runs = {good.sha: _stored(good.sha, [1.0, 1.02, 0.99, 1.01, 0.98]),
            c.sha: _stored(c.sha, [slower * f for f in (1.0, 1.02, 0.99, 1.01, 0.98)])}
    monkeypatch.setattr(history, "stored_runs", lambda results_dir, sha, key: runs[sha])

    def no_session(*a, **kw):
        raise AssertionError("stored runs decide: no interleaved session")
    monkeypatch.setattr(history, "run_continuous", no_session)
    j = history.judge(good, c, history.RangeSettings(tmp_path, rounds=5), TPOT, lambda line: None)
    assert (j.verdict, j.source) == (verdict, "stored")
    assert j.why.startswith("tpot_s 0.0117") and "permutation p=" in j.why


def test_an_undecided_stored_step_is_measured_interleaved(monkeypatch, tmp_path):
    good, c = _commits(2)
    runs = {good.sha: _stored(good.sha, [1.0, 1.3, 0.8, 1.2, 0.9]),        # +15 %, but too noisy to tell
            c.sha: _stored(c.sha, [1.15 * f for f in (0.9, 0.8, 1.2, 1.3, 1.0)])}
    monkeypatch.setattr(history, "stored_runs", lambda results_dir, sha, key: runs[sha])
    sessions = []
    monkeypatch.setattr(history, "run_continuous", lambda s, echo: sessions.append(s) or
                        type("Session", (), {"comparison": None})())
    j = history.judge(good, c, history.RangeSettings(tmp_path, rounds=5), TPOT, lambda line: None)
    assert (j.verdict, j.source) == (history.UNDECIDED, "interleaved") and len(sessions) == 1
    assert (sessions[0].base, sessions[0].head, [t.metric for t in sessions[0].thresholds]) == (good.sha, c.sha,
                                                                                              ["tpot_s"])
