"""Store readers reject what the schema rejects: nesting depth is bounded (a 200,000-deep `[[[` file is one skipped
line in compare, report, list, export and at a bench session's end, never a RecursionError), values outside the
schema's range (negative times, NaN, infinities, 1e400) make the record count as damaged, each kind said in the
one skipped line; a gated metric without a usable baseline says "no baseline"; a huge value prints compactly."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llm_research_bench.harness.analysis.compare import compare_metric
from llm_research_bench.harness.analysis.names import Threshold
from llm_research_bench.harness.records import spec
from llm_research_bench.harness.run import environment, store
from llm_research_bench.harness.units import num, spread
from tests.reliability.bad_input import COMMIT_B, bench_cli, clean, session_ran
from tests.reliability.test_bad_records import _edit, _newest, results  # noqa: F401 -- `results`: a fixture

COMMANDS = {
    "compare": lambda out: ["compare", "aaaa", "bbbb"],
    "report": lambda out: ["report", "--out", out / "r.html"],
    "list": lambda out: ["list"],
    "export": lambda out: ["export", "--format", "bencher", "--out", out / "e.json"],
}


def _deep(path: Path, depth: int = 200_000) -> None:
    path.write_text("[" * depth)


def _one_skip_line(r, command: str, pattern: str) -> str:
    clean(r)
    assert r.rc == 0, r.err
    assert len(r.lines) == 1 and r.lines[0].startswith(f"{command}: skipped 1 "), r.lines
    assert re.search(pattern, r.lines[0]), r.lines[0]
    return r.lines[0]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_200k_deep_file_is_one_damaged_line_in_every_command(capsys, results, tmp_path, command):
    _deep(results / "fp1" / COMMIT_B[:12] / "zz-deep.json")
    r = bench_cli(capsys, *COMMANDS[command](tmp_path), "--results-dir", results)
    _one_skip_line(r, command, r"damaged file that is not a record, .*zz-deep\.json \(nested too deeply to be a "
                               r"record\): remove them")
    assert len(store.read_store(results).records) == 4                     # the rest is read


def test_a_record_nested_beyond_the_bound_is_damaged(results):
    path = _newest(results)
    nested: list = []
    for _ in range(40):
        nested = [nested]
    _edit(path, lambda d: d["extra"].update(deep=nested))
    read = store.read_store(results)
    assert read.skipped.files[path] == (store.DAMAGED, "nested deeper than 32 levels") and len(read.records) == 3


def test_a_bench_session_ends_with_one_skipped_line_and_its_exit_status(bench, monkeypatch):
    monkeypatch.setenv("RESEARCH_BENCH_MACHINE_ID", "m1")
    environment.machine_info.cache_clear()
    try:
        folder = bench.results / "m1" / ("c" * 12)
        folder.mkdir(parents=True)
        _deep(folder / "deep.json")
        bench.run_bench()
        r = clean(session_ran(bench.run("-m", "quick")))
    finally:
        environment.machine_info.cache_clear()
    assert r.rc == 0, r.out[-2000:]
    skipped = [line for line in r.out.splitlines() if "results store: skipped" in line]
    assert len(skipped) == 1 and "deep.json (nested too deeply to be a record)" in skipped[0]


# -- values outside the schema's range ----------------------------------------------------------------------------
def _set_time(value_json: str):
    """Damage the newest current-side record: its execution_time_s written as `value_json` (NaN, 1e400...)."""
    def damage(results: Path) -> Path:
        path = _newest(results)
        d = json.loads(path.read_text())
        d["telemetry"]["metrics"]["execution_time_s"] = "@@"
        path.write_text(json.dumps(d).replace('"@@"', value_json))
        return path
    return damage


VALUES = {"-5": "negative", "NaN": "not a number", "Infinity": "infinite", "-Infinity": "infinite",
          "1e400": "infinite"}


@pytest.mark.parametrize("value", list(VALUES))
@pytest.mark.parametrize("command", ["compare", "export"])
def test_a_value_outside_the_schemas_range_makes_the_record_damaged(capsys, results, tmp_path, value, command):
    path = _set_time(value)(results)
    args = ["compare", "aaaa", "bbbb", "--compare-fail", "execution_time_s:5%"] if command == "compare" else \
        COMMANDS[command](tmp_path)
    r = bench_cli(capsys, *args, "--results-dir", results)
    line = _one_skip_line(r, command, rf"damaged record with a value outside the schema's range \({VALUES[value]}\), "
                                      rf".*telemetry\.metrics\.execution_time_s is ")
    assert str(path) in line and line.endswith("fix or remove those files")
    assert "REGRESSION" not in r.out and len(store.read_store(results).records) == 3
    if command == "export":
        doc = json.loads((tmp_path / "e.json").read_text())
        assert "-5" not in json.dumps(doc) and "Infinity" not in json.dumps(doc) and "NaN" not in json.dumps(doc)


def test_every_kind_of_bad_value_is_told_in_the_one_line(capsys, results):
    paths = sorted(results.glob("fp1/*/*.json"))
    for path, value in zip(paths, ["-5", "NaN", "1e400"]):
        d = json.loads(path.read_text())
        d["telemetry"]["metrics"]["execution_time_s"] = "@@"
        path.write_text(json.dumps(d).replace('"@@"', value))
    r = clean(bench_cli(capsys, "list", "--results-dir", results))
    assert r.rc == 0 and len(r.lines) == 1, r.lines
    assert r.lines[0].startswith("list: skipped 3 damaged records with values outside the schema's range (")
    kinds = re.search(r"range \(([^)]*)\)", r.lines[0]).group(1).split(", ")
    assert sorted(kinds) == ["infinite", "negative", "not a number"]


# -- the gate without a usable baseline; huge values --------------------------------------------------------------
def test_a_gated_metric_without_a_usable_baseline_says_no_baseline():
    d = compare_metric("execution_time_s", spec("execution_time_s"), [], [10.0, 10.2, 9.9],
                       threshold=Threshold("execution_time_s", 5.0, "lower"))
    assert d.verdict == "no baseline" and not d.failed
    six = [10.0, 10.1, 9.9, 10.05, 9.95, 10.0]
    ok = compare_metric("execution_time_s", spec("execution_time_s"), six, six,
                        threshold=Threshold("execution_time_s", 5.0, "lower"))
    assert ok.verdict == "ok"


def test_the_comparison_table_says_no_baseline_for_that_gated_metric(capsys, results):
    for path in results.glob(f"fp1/{'a' * 12}/*.json"):
        _edit(path, lambda d: d["telemetry"]["metrics"].pop("execution_time_s"))
    r = clean(bench_cli(capsys, "compare", "aaaa", "bbbb", "--compare-fail", "execution_time_s:5%",
                        "--results-dir", results))
    assert r.rc == 0, r.err
    row = next(line for line in r.out.splitlines() if re.search(r"\btime\b", line) and "5 %" in line)
    assert row.rstrip().endswith("no baseline") and not row.rstrip().endswith(" ok")


def test_huge_values_print_compactly(capsys, results):
    assert num(1e308, "s") == "1e+308 s" and spread(1e308, 1e300, 3, "s") == "1e+308 ±1e+300 s"
    assert num(123456.0, "s") == "123,456 s"                        # ordinary sizes as before
    _set_time("1e308")(results)
    r = clean(bench_cli(capsys, "compare", "aaaa", "bbbb", "--results-dir", results))
    assert r.rc == 0 and re.search(r"  \de\+307 ±\S+ s \(n=2\)  ", r.out), r.out
    assert not re.search(r"\d{16}", r.out.replace(",", ""))          # no column of digits


def test_no_metric_name_is_in_two_schemas():
    from llm_research_bench.harness.records import metric_specs
    names = [n for source in ("telemetry", "quality", "breakdown") for n in metric_specs(source)]
    assert len(names) == len(set(names))
