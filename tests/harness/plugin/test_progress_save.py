"""Live progress through the terminal reporter (one plain line per round off a TTY, quiet under -q, from isolated children
too); naming a session's runs (--research-save) and comparing with the name; one JSON file per session
(--research-json); `research-bench list`; a dirty tree's runs kept apart from the commit's clean runs."""
from __future__ import annotations

import json

from llm_research_bench.harness.commands import cli


def test_progress_piped_is_one_line_per_round(bench):
    bench.run_bench()
    r = bench.run("-m", "quick", "--research-rounds", "2")
    assert r.ret == 0
    out = r.stdout.str()
    lines = [line for line in r.outlines if line.startswith("[research-bench]")]
    assert "\r" not in out                                     # plain lines off a TTY
    assert lines == ["[research-bench] run[quick] warm-up 1 | completed in 18.6 s, 86.2 tok/s: target met",
                     "[research-bench] run[quick] round 1/2 | completed in 18.6 s, 86.2 tok/s: target met",
                     "[research-bench] run[quick] round 2/2 | completed in 18.6 s, 86.2 tok/s: target met"]
    # the run's lines come before pytest reports the test's result
    assert out.index("round 1/2 | completed") < out.index("research bench summary")


def test_progress_is_quiet_under_q(bench):
    bench.run_bench()
    r = bench.run("-m", "quick", "-q")
    assert r.ret == 0 and "[research-bench]" not in r.stdout.str()


def test_progress_of_an_isolated_run_comes_from_the_child(bench):
    bench.run_bench()
    r = bench.run("-m", "quick", "--research-isolate")
    assert r.ret == 0, r.stdout.str()
    r.stdout.fnmatch_lines(["[[]research-bench[]] run[[]quick[]] round 1/1 | completed in 18.6 s, 86.2 tok/s: target met"])


def test_save_a_session_compare_with_its_name_and_list_it(bench):
    bench.run_bench()
    bench.commit("one")
    js = bench.pytester.path / "out" / "session.json"
    r = bench.run("-m", "quick", "--research-save", "before", "--research-json", str(js), "--research-rounds", "2")
    assert r.ret == 0 and "saved as 'before'" in r.stdout.str()
    doc = json.loads(js.read_text())
    assert doc["format"] == "research-bench-session" and doc["saved_as"] == "before" and doc["passed"]
    assert len(doc["records"]) == 3 and doc["instances"][0]["runs"] == 2
    assert round(doc["instances"][0]["time_median_s"], 1) == 18.6 and doc["commit"]["dirty"] is False
    assert all(rec["extra"]["saved_as"] == "before" for rec in doc["records"])
    bench.commit("two")
    r = bench.run("-m", "quick", "--research-compare=before")
    assert r.ret == 0
    assert "baseline 'before' (--research-compare=before, a saved session), 3 record(s)" in r.stdout.str()
    # offline: the name as a REF, and the list of what is stored
    import os
    os.chdir(bench.pytester.path)
    assert cli.main(["compare", "before", "HEAD", "--results-dir", str(bench.results), "--format", "json"]) == 0
    assert cli.main(["list", "--results-dir", str(bench.results), "--format", "json"]) == 0


def test_list_shows_machines_commits_and_names(bench, capsys):
    bench.record_bench()
    bench.commit("one")
    assert bench.run("-m", "quick", "--research-save", "nightly").ret == 0
    (bench.pytester.path / "CHANGES").write_text("edited")          # a dirty tree
    assert bench.run("-m", "quick").ret == 0
    capsys.readouterr()
    assert cli.main(["list", "--results-dir", str(bench.results), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and {r["dirty"] for r in rows} == {True, False}
    clean = next(r for r in rows if not r["dirty"])
    assert clean["names"] == ["nightly"] and clean["records"] == 1 and clean["commit"].endswith(clean["commit"][:12])
    assert next(r for r in rows if r["dirty"])["commit"].endswith("+dirty")
    assert cli.main(["list", "--results-dir", str(bench.results)]) == 0
    text = capsys.readouterr().out
    assert "nightly" in text and "+dirty" in text and "saved as" in text


def test_dirty_runs_are_filed_apart_and_never_a_commits_baseline(bench, monkeypatch):
    monkeypatch.setenv("RB_DOUBLE_TIMES", "20")
    bench.run_bench()
    a = bench.commit("one")
    assert bench.run("-m", "quick").ret == 0                      # clean run of a: 20 s
    (bench.pytester.path / "CHANGES").write_text("edited")
    monkeypatch.setenv("RB_DOUBLE_TIMES", "30")
    r = bench.run("-m", "quick", "--research-compare")          # dirty run of a: compared with a's clean run
    assert f"baseline {a[:12]}" in r.stdout.str()
    folders = sorted(p.name for p in bench.results.glob("*/*") if p.is_dir())
    assert folders == [a[:12], a[:12] + "+dirty"]
    bench.commit("two")                                         # a clean session at the next commit
    monkeypatch.setenv("RB_DOUBLE_TIMES", "21")
    r = bench.run("-m", "quick", "--research-compare")
    out = r.stdout.str()
    assert f"baseline {a[:12]}" in out and "1 record(s)" in out  # a's clean run only, not its dirty one
    assert "+5.0 %" in out                                       # 21 s against 20 s (not against 30 s)


class _Shown:
    """Stands in for LiveProgress: what a round's progress would show (a test double)."""

    def __init__(self):
        self.shown: list[str] = []

    def status(self, text, **kw):
        self.shown.append(text)

    line = live = status


def test_a_remeasured_attempt_has_its_own_clock_and_no_stale_rate(monkeypatch):
    from llm_research_bench.harness.plugin import runner
    now = {"t": 100.0}
    monkeypatch.setattr(runner.time, "monotonic", lambda: now["t"])
    out = _Shown()
    p = runner._RunProgress(out, "pipeline[quick] round 1/3", 30.0)
    p({"event": "phase", "phase": "plan"})
    now["t"] += 13.5
    p({"event": "batch_done", "batch": 0, "claims": 2, "tokens": 80, "decode_tps": 60.0})
    p({"event": "verdict", "status": "completed", "execution_time_s": 13.5, "again": True, "other_cores": 0.99,
       "decode_tps": 61.0})
    p({"event": "attempt", "number": 2, "of": 3, "other_cores": 0.99, "wait_s": 30.0})
    now["t"] += 40.0                                # the wait for a quiet machine is not the attempt's time
    p({"event": "phase", "phase": "plan"})
    now["t"] += 2.0
    p({"event": "retrieved", "hits": 24})
    assert out.shown[2] == ("pipeline[quick] round 1/3 | completed in 13.5 s, 61.0 tok/s: timed on a busy machine "
                            "(other processes 99 % of a core): measuring again")
    assert out.shown[3] == ("pipeline[quick] round 1/3 attempt 2/3 - busy machine (other processes 99 % of a core), "
                            "waiting up to 30 s")
    assert out.shown[-1] == "pipeline[quick] round 1/3 attempt 2/3 | retrieved 24 passages | 2.0 s / 30.0 s budget"


class _TerminalDouble:
    """Stands in for pytest's terminal reporter on a TTY: what it was asked to draw (a test double)."""
    isatty = True

    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    def rewrite(self, text, erase=False):
        self.calls.append(("rewrite", text))

    def write(self, text, flush=False):
        self.calls.append(("write", text))

    def write_line(self, text, flush=False):
        self.calls.append(("line", text))

    def ensure_newline(self):
        pass


def test_on_a_terminal_a_bench_is_one_live_line_left_whole_at_its_end(monkeypatch):
    from llm_research_bench.harness.plugin import runner
    monkeypatch.setenv("COLUMNS", "80")
    tr = _TerminalDouble()
    config = type("Config", (), {"pluginmanager": type("PM", (), {"get_plugin": lambda self, n: tr
                                                                    if n == "terminalreporter" else None})(),
                                 "get_verbosity": lambda self: 0})()
    out = runner.LiveProgress(config)
    p = runner._RunProgress(out, "pipeline[quick] round 1/1", 30.0)
    p({"event": "phase", "phase": "plan"})
    verdict = {"event": "verdict", "status": "completed", "execution_time_s": 34.5, "target_met": False,
               "decode_tps": 12.5, "contended": True, "messages": ["quick: 34.5 s > 30 s budget (+15 %) [linux]"]}
    p(verdict)
    out.end()
    assert [kind for kind, _ in tr.calls] == ["rewrite", "rewrite", "rewrite", "write"]    # no line of its own
    assert all(len(text) <= 79 for kind, text in tr.calls[:2])
    whole = tr.calls[2][1]
    assert whole.splitlines() == [
        "[research-bench] pipeline[quick] round 1/1 | completed in 34.5 s, 12.5 tok/s:",
        "    quick: 34.5 s > 30 s budget (+15 %) [linux]; timed on a busy machine"]


def test_the_live_rate_counts_from_the_first_token(monkeypatch):
    from llm_research_bench.harness.plugin import runner
    now = {"t": 0.0}
    monkeypatch.setattr(runner.time, "monotonic", lambda: now["t"])
    out = _Shown()
    p = runner._RunProgress(out, "pipeline[quick] round 1/1", 30.0)
    p({"event": "phase", "phase": "synthesis"})
    now["t"] = 5.0                                  # prompt evaluation: no token yet
    p({"event": "tokens", "count": 1})
    now["t"] = 7.0
    p({"event": "tokens", "count": 21})
    assert out.shown[1:] == ["pipeline[quick] round 1/1 | synthesis, 1 tokens streamed | 5.0 s / 30.0 s budget",
                             "pipeline[quick] round 1/1 | synthesis, 21 tokens streamed (10.0 tok/s) | 7.0 s / 30.0 s "
                             "budget"]
