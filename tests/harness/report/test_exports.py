"""Exports from stored records, validated against each format's documented shape (schemas/exports/)."""
from __future__ import annotations

import json
import statistics

import pytest
from jsonschema import Draft7Validator

from llm_research_bench.harness.commands import cli
from llm_research_bench.harness import records
from llm_research_bench.harness.report import exports as export
from llm_research_bench.harness.analysis import measures
from llm_research_bench.harness.report.exports import ExportError
from tests.harness.testdata import TESTDATA_COMMITS, TESTDATA_MACHINE, TESTDATA_OTHER_MACHINE


@pytest.mark.parametrize("fmt", ("bencher", "github-action-benchmark"))
def test_export_schemas_are_valid_json_schemas(fmt):
    Draft7Validator.check_schema(export.export_schema(fmt))


def test_bencher_shape_and_values(testdata_records):
    doc = export.export(testdata_records, "bencher")
    assert export.validation_errors(doc, "bencher") == []
    research = doc["research[quick]"]
    # value = median over the newest commit's 3 runs; lower/upper = min/max
    newest = [r for r in testdata_records if r.commit == TESTDATA_COMMITS[-1] and r.bench == "research"
              and r.machine_fingerprint == TESTDATA_MACHINE]
    times = [r.telemetry["metrics"]["execution_time_s"] for r in newest]
    assert research["execution-time-s"] == {"value": statistics.median(times), "lower_value": min(times),
                                            "upper_value": max(times)}
    # only metrics with a direction by default; with include_neutral the neutral ones come too
    assert "tokens-generated" not in research
    assert "tokens-generated" in export.export(testdata_records, "bencher", include_neutral=True)["research[quick]"]
    # the accuracy carries its Wilson interval as the range
    acc = doc["quality[quick]"]["accuracy"]
    assert acc["lower_value"] < acc["value"] < acc["upper_value"]
    assert all(len(k) <= 64 for v in doc.values() for k in v)


def test_bencher_leaves_other_machines_out(testdata_records):
    doc = export.export(testdata_records, "bencher")
    slow = export.export(testdata_records, "bencher", machine=TESTDATA_OTHER_MACHINE)
    assert list(slow) == ["research[quick]"]
    assert slow["research[quick]"]["execution-time-s"]["value"] > 4 * doc["research[quick]"]["execution-time-s"]["value"]


@pytest.mark.parametrize("direction,want", [("smaller", "lower"), ("bigger", "higher")])
def test_github_action_benchmark_by_direction(testdata_records, direction, want):
    doc = export.export(testdata_records, "github-action-benchmark", direction=direction)
    assert export.validation_errors(doc, "github-action-benchmark") == []
    names = [d["name"] for d in doc]
    assert len(names) == len(set(names))
    for d in doc:
        metric = d["name"].split(" ", 1)[1]
        assert records.better(metric) == want, d
        assert d["unit"] == (records.unit(metric) or "count")
    by = {d["name"]: d for d in doc}
    if direction == "smaller":
        t = by["research[quick] execution_time_s"]
        assert t["range"].startswith("± ") and "median of 3 run(s)" in t["extra"]
    else:
        assert "quality[quick] accuracy" in by and "95% interval" in by["quality[quick] accuracy"]["extra"]


def test_schemas_reject_wrong_shapes():
    assert export.validation_errors({"b": {"Bad Slug": {"value": 1}}}, "bencher")
    assert export.validation_errors({"b": {"m": {"lower_value": 1}}}, "bencher")
    assert export.validation_errors({"b": {"m": {"value": "1"}}}, "bencher")
    assert export.validation_errors([{"name": "x", "value": 1}], "github-action-benchmark")
    assert export.validation_errors([{"name": "x", "unit": "s", "value": 1, "range": 0.1}], "github-action-benchmark")
    assert export.validation_errors([], "github-action-benchmark")


def test_slug():
    assert export.slug("execution_time_s") == "execution-time-s"
    assert export.slug("A__B--c") == "a-b-c"
    assert len(export.slug("x" * 100)) == 64


def test_no_records_is_a_clear_error(tmp_path):
    with pytest.raises(ExportError, match="run the benches first"):
        export.export([], "bencher")
    with pytest.raises(ExportError, match="--format"):
        export.export([], "xml")
    with pytest.raises(ExportError, match="no measured result records"):
        export.export([], "csv")


def test_cli_writes_files(testdata_results_dir, tmp_path, capsys):
    out = tmp_path / "bencher.json"
    assert cli.main(["export", "--format", "bencher", "--out", str(out), "--results-dir", str(testdata_results_dir)]) == 0
    assert export.validation_errors(json.loads(out.read_text()), "bencher") == []
    gab = tmp_path / "gab.json"
    assert cli.main(["export", "--format", "github-action-benchmark", "--direction", "bigger", "--out", str(gab),
                        "--results-dir", str(testdata_results_dir)]) == 0
    assert "customBiggerIsBetter" in capsys.readouterr().out
    assert export.validation_errors(json.loads(gab.read_text()), "github-action-benchmark") == []
    assert cli.main(["export", "--format", "bencher", "--out", str(out), "--results-dir", str(tmp_path / "none")]) == 2
    assert cli.main(["export", "--format", "bencher", "--direction", "bigger", "--out", str(out),
                        "--results-dir", str(testdata_results_dir)]) == 2


def test_engine_efficiency_numbers_are_reused_under_breakdown_names(testdata_records):
    from tests.harness.testdata import TESTDATA_COMMITS, record, varied_telemetry
    eff = {"rounds": [{"raw_decode_tps": 100.0, "engine_decode_tps": 90.0}, {"raw_decode_tps": 110.0,
                                                                            "engine_decode_tps": 95.0},
                      {"raw_decode_tps": 120.0, "engine_decode_tps": 99.0}],
           "decode_ratio_median": 0.86, "wall_decode_ratio_median": 0.8, "prefix_reuse_ratio_median": 0.95}
    rec = record(varied_telemetry(), commit=TESTDATA_COMMITS[-1], ts="2026-11-23T13:00:00.000000+00:00",
                 bench="engine_decode_and_prefix_reuse_vs_raw_llama_cpp", extra={"efficiency": eff})
    assert measures.efficiency_values(rec) == {"engine_vs_raw_decode_ratio": 0.86, "engine_vs_raw_wall_ratio": 0.8,
                                               "raw_decode_tokens_per_second": 110.0,
                                               "engine_decode_tokens_per_second": 95.0}
    doc = export.export(testdata_records + [rec], "bencher")
    m = doc["engine_decode_and_prefix_reuse_vs_raw_llama_cpp[quick]"]
    assert m["engine-vs-raw-decode-ratio"]["value"] == 0.86 and "execution-time-s" in m
    from llm_research_bench.harness.report import html as report_html
    assert "engine vs raw llama-cpp-python, 3 rounds" in report_html.render(testdata_records + [rec])


def test_csv_and_jsonl_hold_every_measured_run_one_row_per_metric(testdata_records, testdata_results_dir, tmp_path):
    import csv
    import io
    text = export.export(testdata_records, "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == export.ROW_FIELDS
    measured = [r for r in testdata_records if measures.is_measurement(r)]
    assert len({r["record_id"] for r in rows}) == len(measured)           # every measured run, all machines
    assert {r["machine"] for r in rows} == {TESTDATA_MACHINE, TESTDATA_OTHER_MACHINE}
    t = [r for r in rows if r["metric"] == "execution_time_s"]
    assert len(t) == sum(1 for r in measured if r.metric("execution_time_s") is not None)
    assert all(r["unit"] == "s" and r["better"] == "lower" for r in t)
    lines = export.export(testdata_records, "jsonl", machine=TESTDATA_OTHER_MACHINE).splitlines()
    docs = [json.loads(line) for line in lines]
    assert docs and all(d["machine"] == TESTDATA_OTHER_MACHINE for d in docs) and set(docs[0]) == set(export.ROW_FIELDS)
    out = tmp_path / "runs.csv"
    assert cli.main(["export", "--format", "csv", "--out", str(out), "--results-dir", str(testdata_results_dir)]) == 0
    assert out.read_text() == text
