"""What the user reads fits the terminal: through the plugin (the engine is the test double replay_research_double,
tests/harness/doubles.py) and research-bench's commands, every line the harness prints is at most 120 columns
with no terminal, and follows $COLUMNS where it is set; the metric names tables show are the names options take;
llama.cpp's own log is let through only under -vv."""
from __future__ import annotations

import re

import pytest

from llm_research_bench.harness.analysis.names import HEADLINE, UnknownMetric, resolve, vocabulary
from llm_research_bench.harness.commands import cli
from llm_research_bench.harness.records import metric_specs
from llm_research_bench.harness.report import layout, table


def _ours(lines: list[str]) -> list[str]:
    """The lines the harness writes: its header, progress and everything from the summary's separator on."""
    start = next(i for i, line in enumerate(lines) if "research bench summary" in line)
    return [line for line in lines[:start] if line.startswith(("research-bench", "[research-bench]", "  "))] \
        + lines[start:]


def _metric_column(text: str) -> list[str]:
    """The comparison table's metric column (the bench is named on a series' first row only)."""
    rows = [line for line in text.splitlines() if line.startswith(("run[quick]  ", " " * 12)) and line.strip()]
    return [re.split(r"\s{2,}", r.strip())[0 if r.startswith(" ") else 1] for r in rows]


@pytest.fixture
def compared(bench, monkeypatch):
    """Commit a measured quietly (4 rounds); commit b checked out."""
    bench.run_bench()
    bench.commit("a")
    monkeypatch.setenv("RB_DOUBLE_TIMES", "10,10.3,9.8,10.1")
    assert bench.run("-m", "quick", "--research-warmup-runs", "0", "--research-rounds", "4", "--research-save",
                     "a-rather-long-name-for-a-saved-session").ret == 0
    bench.commit("b")
    return bench


def _busy_session(bench, monkeypatch, *args):
    """Commit b: slower, two rounds timed on a busy machine (one re-measured), one under budget, gated by two
    thresholds named by their table labels."""
    monkeypatch.setenv("RB_DOUBLE_TIMES", "15,60,15.2,5,60")
    bench.cpu.contended(1.3, None, None, 0.99, 1.7, 1.2)
    return bench.run("-m", "quick", "--research-warmup-runs", "0", "--research-rounds", "4", "--research-remeasure",
                     "1", "--research-compare-fail", "time:10%", "--research-compare-fail", "mem peak:5%", *args)


def test_every_summary_line_fits_120_columns_without_a_terminal(compared, monkeypatch):
    monkeypatch.delenv("COLUMNS")
    r = _busy_session(compared, monkeypatch)
    out = _ours(r.outlines)
    assert any("Comparison: baseline" in line for line in out) and any("busy machine" in line for line in out)
    assert max(map(len, out)) <= 120, "\n".join(line for line in out if len(line) > 120)
    # one busy-machine line and one under-budget line for the bench instance, never one per attempt
    assert sum("]: busy machine: " in line for line in out) == 1
    assert sum("]: under budget: " in line for line in out) == 1
    assert sum(line.startswith("test: ") for line in out) == 1          # the noise tests' legend, once


def test_lines_follow_the_terminal_width(compared, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    r = _busy_session(compared, monkeypatch)
    out = _ours(r.outlines)
    assert max(map(len, out)) <= 100, "\n".join(line for line in out if len(line) > 100)


def test_compare_and_list_fit_120_columns(compared, monkeypatch, capsys):
    monkeypatch.delenv("COLUMNS")
    _busy_session(compared, monkeypatch)
    capsys.readouterr()                             # the sessions' own output
    results = str(compared.pytester.path / "results")
    assert cli.main(["compare", "a-rather-long-name-for-a-saved-session", "--results-dir", results]) == 0
    text = capsys.readouterr().out
    assert "Comparison: baseline" in text and max(map(len, text.splitlines())) <= 120, text
    assert _metric_column(text) == ["time", "TTFT", "TPOT", "decode tok/s", "mem peak", "cit. valid",
                                         "cit. grounded"]             # the headline metrics, in HEADLINE's order
    assert cli.main(["list", "--results-dir", results]) == 0
    text = capsys.readouterr().out
    assert "a-rather-long-name-" in text
    assert max(map(len, text.splitlines())) <= 120, text


def test_compare_takes_the_tables_labels_and_lists_the_valid_names(compared, monkeypatch, capsys):
    monkeypatch.delenv("COLUMNS")
    _busy_session(compared, monkeypatch)
    capsys.readouterr()                             # the session's own output
    results = str(compared.pytester.path / "results")
    assert cli.main(["compare", "a-rather-long-name-for-a-saved-session", "--results-dir", results,
                     "--metrics", "time,mem peak,TTFT", "--compare-fail", "cit. valid:5%"]) == 0
    assert _metric_column(capsys.readouterr().out) == ["time", "mem peak", "TTFT", "cit. valid"]
    assert cli.main(["compare", "a-rather-long-name-for-a-saved-session", "--results-dir", results,
                     "--metrics", "speed"]) == 2
    err = capsys.readouterr().err
    assert "compare: --metrics: unknown metric 'speed'" in err and "time (execution_time_s)" in err
    assert "mem peak (memory_peak_mb)" in err


# -- pure -----------------------------------------------------------------------------------------------------------

def test_every_label_a_table_shows_is_a_metric_name():
    specs = metric_specs("telemetry")
    words = vocabulary(specs)
    labels = [s["x-label"] for s in specs.values() if s.get("x-label")]
    assert all(resolve(x) == n for n, s in specs.items() for x in (n, s.get("x-label") or n))
    assert {resolve(h.split(" / ")[0]) for h in table.HEADERS if h.split(" / ")[0] in words} == {
        "execution_time_s", "memory_peak_mb", "tokens_per_second", "claims", "citation_validity"}
    assert resolve("MEM  Peak") == "memory_peak_mb" and len(labels) == len(set(map(str.lower, labels)))
    assert set(HEADLINE) <= set(specs) and len(HEADLINE) <= 8
    with pytest.raises(UnknownMetric, match=r"unknown metric 'speed'; valid names: time \(execution_time_s\)"):
        resolve("speed")


def test_a_table_narrows_its_wrappable_columns_to_fit():
    body = [["pipeline[quick] with a long name", "x" * 60, "1.0"], ["micro[embed]", "y", "2.0"]]
    out = layout.table(body, ["bench", "notes", "value"], wrappable=(0, 1), cols=50)
    assert layout.longest(out) <= 50 and out.count("x") == 60 and "micro[embed]" in out
    lines = layout.wrap("note: " + "word " * 30, 40)
    assert max(map(len, lines)) <= 40 and all(x.startswith("  word") for x in lines[1:])
    assert " ".join(x.strip() for x in lines) == "note: " + " ".join(["word"] * 30)


def test_llama_log_is_let_through_only_under_vv(bench):
    from llm_research_bench.engine.backends import llamacpp
    bench.record_bench()
    seen = []
    bench.pytester.makeconftest("def pytest_sessionstart(session):\n"
                                "    from llm_research_bench.engine.backends import llamacpp\n"
                                "    print('native log', llamacpp._show_native_log)\n")
    for flag, shown in (("-q", False), ("-v", False), ("-vv", True)):
        r = bench.run("-m", "quick", flag, "-s")
        seen.append((flag, f"native log {shown}" in r.stdout.str()))
    assert seen == [("-q", True), ("-v", True), ("-vv", True)]
    assert llamacpp._show_native_log is False                  # reset when the session ends
