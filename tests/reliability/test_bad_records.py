"""The results store and the research-bench commands on bad records: every kind of damage is skipped and said in
one line per kind, the rest is read; bad --out and --results-dir are one usage line; files are readable by the
team."""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_research_bench.engine import telemetry
from llm_research_bench.harness.records import ResultRecord
from llm_research_bench.harness.run import store
from tests.reliability.bad_input import COMMIT_A, COMMIT_B, DATA, ROOT, bench_cli, clean, one_line, session_ran


# -- file modes ----------------------------------------------------------------------------------------------------
def test_records_and_telemetry_files_are_readable_by_the_team(tmp_path):
    old = os.umask(0o022)
    try:
        rec = store.append(tmp_path / "results", _record(COMMIT_A))
        tel = telemetry.write(tmp_path / "t.json", {"run_id": "x"}).path
    finally:
        os.umask(old)
    assert stat.S_IMODE(rec.stat().st_mode) == 0o644 and stat.S_IMODE(tel.stat().st_mode) == 0o644


# -- the results store and the research-bench commands ------------------------------------------------------------------
def _record(commit: str, **kw) -> ResultRecord:
    base = dict(test_id="benches/test_pipeline.py::test_pipeline[quick]", bench="pipeline", profile="quick",
                outcome="passed", target_met=True, machine_fingerprint="fp1", machine_class="linux-x86_64-2c",
                commit=commit, telemetry=json.loads(DATA.read_text()))
    base.update(kw)
    return ResultRecord(**base)


@pytest.fixture
def results(tmp_path) -> Path:
    """A store with two good records for each of two commits on one machine."""
    root = tmp_path / "results"
    for c in (COMMIT_A, COMMIT_B):
        for _ in range(2):
            store.append(root, _record(c))
    return root


def _edit(path: Path, fn) -> None:
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))


def _newest(results: Path) -> Path:
    return sorted(results.glob(f"fp1/{COMMIT_B[:12]}/*.json"))[-1]


DEFECTS = {
    # name: (how the store is damaged, kind's line pattern, records still readable)
    "record_version_99": (lambda r: _edit(_newest(r), lambda d: d.update(record_version=99)),
                          r"skipped 1 record written by a newer plugin, .* \(record_version 99; this plugin reads up "
                          r"to 1\): upgrade llm-research-bench", 3),
    "metric_fast": (lambda r: _edit(_newest(r), lambda d: d["telemetry"]["metrics"].update(execution_time_s="fast")),
                    r"skipped 1 record with a field or metric of the wrong type, .* \(telemetry\.metrics\."
                    r"execution_time_s is \"fast\", not number\): fix or remove", 3),
    "extra_a_list": (lambda r: _edit(_newest(r), lambda d: d.update(extra=[1, 2])),
                     r"skipped 1 record with a field or metric of the wrong type, .*field 'extra' is \[1, 2\]", 3),
    "older_schema": (lambda r: _edit(_newest(r), lambda d: d["telemetry"].update(schema_version="0.9")),
                     r"skipped 1 record of an older schema, .*telemetry schema_version '0\.9'; this plugin reads "
                     r"'1\.2'\): re-run", 3),
    "truncated": (lambda r: _newest(r).write_bytes(_newest(r).read_bytes()[:200]),
                  r"skipped 1 damaged file that is not a record, .*not JSON", 3),
    "binary": (lambda r: (r / "fp1" / COMMIT_B[:12] / "zz.json").write_bytes(b"\xff\x00" * 64),
               r"skipped 1 damaged file that is not a record, .*zz\.json \(not UTF-8", 4),
    "fifo": (lambda r: os.mkfifo(r / "fp1" / COMMIT_B[:12] / "zz-fifo.json"),
             r"skipped 1 non-regular file named \*\.json, .*zz-fifo\.json \(a FIFO, not a regular file\): remove", 4),
    "folder": (lambda r: (r / "fp1" / COMMIT_B[:12] / "zz-dir.json").mkdir(),
               r"skipped 1 non-regular file named \*\.json, .*zz-dir\.json \(a folder", 4),
    "200MB_garbage": (lambda r: _sparse(r / "fp1" / COMMIT_B[:12] / "zz-big.json", 200 << 20),
                      r"skipped 1 file over the 16 MiB record size limit, .*zz-big\.json \(200 MiB, over", 4),
}


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        fh.write(b"\x8f garbage")
        fh.truncate(size)


COMMANDS = {
    "compare": lambda out: ["compare", "aaaa", "bbbb"],
    "report": lambda out: ["report", "--out", out / "r.html"],
    "export": lambda out: ["export", "--format", "bencher", "--out", out / "e.json"],
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("defect", list(DEFECTS))
def test_every_command_says_what_it_skipped_in_one_line_and_reads_the_rest(capsys, results, tmp_path, defect,
                                                                           command):
    damage, pattern, readable = DEFECTS[defect]
    damage(results)
    r = clean(bench_cli(capsys, *COMMANDS[command](tmp_path), "--results-dir", results))
    assert r.rc == 0, r.err
    assert len(r.lines) == 1 and r.lines[0].startswith(f"{command}: skipped 1 "), r.lines
    assert re.search(pattern, r.lines[0]), r.lines[0]
    assert len(store.read_store(results).records) == readable             # the rest is read
    if command == "report":
        assert f"from {readable} records" in r.out
    elif command == "compare":
        assert "execution_time_s" in r.out or "time" in r.out


def test_one_line_per_kind_whatever_the_number_of_files(capsys, results, tmp_path):
    d = results / "fp1" / COMMIT_B[:12]
    for i in range(5):
        (d / f"zz-{i}.json").write_text("{")
        os.mkfifo(d / f"zz-fifo-{i}.json")
    r = clean(bench_cli(capsys, "compare", "aaaa", "bbbb", "--results-dir", results))
    assert r.rc == 0
    assert len(r.lines) == 2, r.lines
    assert r.lines[0].startswith("compare: skipped 5 damaged files that are not records, e.g. ")
    assert r.lines[1].startswith("compare: skipped 5 non-regular files named *.json, e.g. ")


def test_skipping_a_200MB_file_costs_no_memory(results):
    _sparse(results / "fp1" / COMMIT_B[:12] / "zz-big.json", 200 << 20)
    code = textwrap.dedent(f"""
        import resource
        from llm_research_bench.harness.run.store import read_store
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        read = read_store({str(results)!r})
        assert len(read.records) == 4 and read.skipped.counts["too_large"] == 1
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip()) < 20, f"reading the store grew the process by {r.stdout.strip()} MB"


@pytest.mark.parametrize("command", ["report", "export"])
def test_out_a_folder_is_one_line_and_leaves_nothing_behind(capsys, results, tmp_path, command):
    out = tmp_path / "outdir"
    out.mkdir()
    argv = ["report", "--out", out] if command == "report" else ["export", "--format", "bencher", "--out", out]
    one_line(bench_cli(capsys, *argv, "--results-dir", results),
             rf"^{command}: --out {re.escape(str(out))} is a folder: give a file name, e.g. ", 2)
    assert list(out.iterdir()) == []                            # no .tmp file left behind
    assert len(store.read_store(results).records) == 4


@pytest.mark.parametrize("command", list(COMMANDS))
def test_results_dir_that_is_a_file(capsys, tmp_path, command):
    f = tmp_path / "results"
    f.write_text("x")
    one_line(bench_cli(capsys, *COMMANDS[command](tmp_path), "--results-dir", f),
             rf"^{command}: results folder .* is not a folder: pass the folder that holds the records", 2)


def test_the_session_summary_says_what_the_store_skipped(bench):
    bench.record_bench()
    assert bench.run("-m", "quick").ret == 0
    d = next(bench.results.rglob("*.json")).parent
    (d / "zz.json").write_text("{")
    os.mkfifo(d / "zz-fifo.json")
    md = bench.pytester.path / "summary.md"
    r = clean(session_ran(bench.run("-m", "quick", "--research-compare", "--research-summary-md", str(md))))
    assert r.rc == 0
    lines = [x for x in r.out.splitlines() if x.startswith("results store: skipped")]
    assert len(lines) == 2, r.out[-3000:]
    assert "damaged file that is not a record" in lines[0] and "non-regular file named *.json" in lines[1]
    assert "StoreWarning" not in r.out
    assert "### Results store" in md.read_text() and md.read_text().count("- skipped 1 ") == 2


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40, deadline=None)
@given(blobs=st.lists(st.one_of(st.binary(max_size=300),
                                st.dictionaries(st.sampled_from(list(_record(COMMIT_A).as_dict())), json_scalars,
                                                max_size=6).map(lambda d: json.dumps(d).encode())),
                      min_size=1, max_size=4))
def test_any_bytes_in_the_store_are_read_or_skipped_in_one_line_per_kind(tmp_path_factory, blobs):
    root = tmp_path_factory.mktemp("results")
    store.append(root, _record(COMMIT_A))
    d = root / "fp1" / COMMIT_A[:12]
    for i, b in enumerate(blobs):
        (d / f"zz-{i}.json").write_bytes(b)
    read = store.read_store(root)
    assert len(read.records) + read.skipped.total == 1 + len(blobs)
    lines = read.skipped.lines()
    assert len(lines) == len(read.skipped.counts) and all("\n" not in x for x in lines)
