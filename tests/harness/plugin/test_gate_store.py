"""The CI gate (exit status), the append-only results store, and the session's outputs: the terminal table,
the Markdown summary ($GITHUB_STEP_SUMMARY) and JUnit XML properties."""
from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET

import pytest

from llm_research_bench.engine.telemetry import validation_errors
from llm_research_bench.harness.records import ResultRecord


def test_a_missed_target_fails_the_session_even_when_the_test_passes(bench):
    bench.record_bench(mutate='tel["metrics"]["execution_time_s"] = 60.0', kwargs=", check=False")
    r = bench.run("-m", "quick")
    r.assert_outcomes(passed=1)
    assert r.ret == pytest.ExitCode.TESTS_FAILED
    r.stdout.fnmatch_lines(["*CI gate: targets missed*", "*test_replayed?quick? (round 0): quick: 60.0 s > 45 s budget*"])


def test_an_ungated_record_is_shown_but_does_not_fail_the_session(bench):
    bench.record_bench(mutate='tel["metrics"]["execution_time_s"] = 60.0', kwargs=", check=False, gate=False")
    r = bench.run("-m", "quick")
    assert r.ret == 0
    r.stdout.fnmatch_lines(["*replayed?quick?*60.0 s / 45 s*no[*] *", "*replayed?quick?: no: time; *not gated*"])


def test_met_targets_exit_zero_and_print_the_summary_table(bench, monkeypatch):
    monkeypatch.setenv("COLUMNS", "115")
    bench.record_bench()
    r = bench.run("-m", "quick")
    assert r.ret == 0
    r.stdout.fnmatch_lines([
        "*research bench summary*",
        "*bench*runs*time / budget*memory / limit*tok/s*claims*cit.*target*Δ time / mem*",
        "*replayed?quick?*1*18.6 s / 45 s*844 / 4096 MB*86.2*5*1.00*yes*",
        "*replayed?quick?: TTFT 2.54 s; early exit no (context_full); time band 10-45 s*",
        "*1 record(s) appended under*",
    ])
    table = r.stdout.str().split("research bench summary", 1)[1].split("recommendation:", 1)[0]
    wide = [line for line in table.splitlines() if len(line) > 115 and "appended under" not in line]
    assert not wide, wide                                 # the summary fits a ~115-column terminal


def test_every_run_appends_one_valid_record_and_never_rewrites_one(bench):
    bench.record_bench()
    assert bench.run("-m", "quick").ret == 0
    (first,) = list(bench.results.rglob("*.json"))
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    mtime = first.stat().st_mtime_ns
    assert bench.run("-m", "quick").ret == 0
    files = sorted(bench.results.rglob("*.json"))
    assert len(files) == 2 and first in files
    assert hashlib.sha256(first.read_bytes()).hexdigest() == digest and first.stat().st_mtime_ns == mtime
    for rec in bench.records():
        assert validation_errors(rec.telemetry) == []
        assert rec.outcome == "passed" and rec.target_met and rec.machine_fingerprint and rec.plugin_version
        assert rec.timestamp and rec.record_id and rec.budget["time_upper_s"] == 45
    assert len({r.extra["session_id"] for r in bench.records()}) == 2


def test_record_carries_commit_dirty_flag_and_branch(bench):
    bench.record_bench()
    sha = bench.commit("first")
    assert bench.run("-m", "quick").ret == 0
    (bench.pytester.path / "CHANGES").write_text("edited")
    assert bench.run("-m", "quick").ret == 0
    recs = bench.records()
    assert [r.commit for r in recs] == [sha, sha] and [r.dirty for r in recs] == [False, True]
    assert recs[0].branch in ("master", "main")


def test_a_damaged_record_is_skipped_loudly_and_the_session_goes_on(bench):
    bench.record_bench()
    assert bench.run("-m", "quick").ret == 0
    (f,) = list(bench.results.rglob("*.json"))
    f.write_text(f.read_text()[:100])
    r = bench.run("-m", "quick", "--research-compare")
    assert r.ret == 0
    read = bench.store()
    assert len(read.records) == 1 and read.skipped.counts == {"damaged": 1}


def test_summary_markdown_and_github_step_summary(bench, monkeypatch):
    gh = bench.pytester.path / "gh-summary.md"
    gh.write_text("previous step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(gh))
    bench.record_bench(mutate='tel["metrics"]["execution_time_s"] = 60.0', kwargs=", check=False")
    md = bench.pytester.path / "out" / "summary.md"
    r = bench.run("-m", "quick", "--research-summary-md", str(md))
    assert r.ret == 1
    text = md.read_text()
    assert text.startswith("## Research bench: FAILED")
    assert "| replayed" in text and "### Targets missed" in text and "60.0 s > 45 s budget" in text
    assert gh.read_text().startswith("previous step\n## Research bench: FAILED")


def test_junit_xml_gets_key_metrics_as_properties(bench):
    bench.run_bench()
    xml = bench.pytester.path / "junit.xml"
    assert bench.run("-m", "quick", f"--junitxml={xml}").ret == 0
    props = {p.get("name"): p.get("value") for p in ET.parse(xml).getroot().iter("property")}
    assert props["execution_time_s"] == "18.6137" and props["memory_peak_mb"] == "843.9"
    assert props["research_bench.target_met"] == "True" and props["time_budget_s"] == "45.0"
    assert {"ttft_s", "tokens_per_second", "citation_validity", "claims"} <= set(props)


def test_other_benches_store_extra_metrics_through_record_result(bench):
    bench.record_bench(kwargs=', extra={"quality": {"metrics": {"accuracy": 0.55}}}, bench="quality-sample"')
    assert bench.run("-m", "quick").ret == 0
    (rec,) = bench.records()
    assert rec.bench == "quality-sample" and rec.extra["quality"]["metrics"]["accuracy"] == 0.55
    assert rec.extra["runner"] == "bench-supplied telemetry"


def test_store_records_from_this_plugin_load_as_result_records(bench):
    bench.record_bench()
    assert bench.run("-m", "quick").ret == 0
    (f,) = list(bench.results.rglob("*.json"))
    d = json.loads(f.read_text())
    assert ResultRecord.from_dict(d).as_dict() == d


def test_summary_md_is_written_even_when_no_bench_ran(bench):
    bench.pytester.makepyfile(test_plain="def test_x(): pass")
    md = bench.pytester.path / "summary.md"
    assert bench.run("--research-summary-md", str(md)).ret == 0
    assert md.read_text().startswith("## Research bench: no bench ran")
