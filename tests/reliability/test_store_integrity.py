"""The results store under concurrent writers, kills mid-write and foreign versions."""
import json
import multiprocessing as mp

import pytest

from llm_research_bench.harness.records import RECORD_VERSION, ResultRecord

from llm_research_bench.harness.run.store import append, read_store


def rec(i=0, **kw):
    base = dict(test_id=f"benches/test_x.py::t[{i}]", bench="t", profile="quick", outcome="passed", target_met=True,
                machine_fingerprint="fp1", machine_class="linux-x86_64-2c", commit="c0ffee" * 7)
    base.update(kw)
    return ResultRecord(**base)


def _writer(root, worker, n):
    for i in range(n):
        append(root, rec(i, extra={"worker": worker, "i": i}))


def test_concurrent_writers_lose_nothing(tmp_path):
    n, workers = 150, 4
    ctx = mp.get_context("spawn")
    ps = [ctx.Process(target=_writer, args=(tmp_path, w, n)) for w in range(workers)]
    for p in ps:
        p.start()
    for p in ps:
        p.join(60)
        assert p.exitcode == 0
    got = read_store(tmp_path).records
    assert len(got) == n * workers
    assert {(r.extra["worker"], r.extra["i"]) for r in got} == {(w, i) for w in range(workers) for i in range(n)}
    assert not list(tmp_path.rglob(".tmp-*"))


def test_record_is_never_overwritten(tmp_path):
    r = rec()
    p = append(tmp_path, r)
    with pytest.raises(FileExistsError):
        append(tmp_path, r)           # same id and timestamp: refused, the stored one stays
    assert json.loads(p.read_text())["record_id"] == r.record_id


def test_truncated_record_is_skipped_loudly(tmp_path):
    keep = append(tmp_path, rec(1))
    broken = append(tmp_path, rec(2))
    broken.write_bytes(broken.read_bytes()[: len(broken.read_bytes()) // 2])   # as a kill mid-copy leaves it
    read = read_store(tmp_path)
    assert [r.record_id for r in read.records] == [json.loads(keep.read_text())["record_id"]]
    assert read.skipped.files == {broken: ("damaged", read.skipped.files[broken][1])}
    assert read.skipped.files[broken][1].startswith("not JSON (")
    (line,) = read.skipped.lines()
    assert line.startswith(f"skipped 1 damaged file that is not a record, {broken} (not JSON")


def test_newer_record_version_is_refused_not_misread(tmp_path):
    p = append(tmp_path, rec())
    d = json.loads(p.read_text())
    d["record_version"] = RECORD_VERSION + 1
    p.write_text(json.dumps(d))
    read = read_store(tmp_path)
    assert read.records == [] and read.skipped.files == {
        p: ("newer", f"record_version {RECORD_VERSION + 1}; this plugin reads up to {RECORD_VERSION}")}
    (line,) = read.skipped.lines()
    assert "written by a newer plugin" in line and line.endswith("upgrade llm-research-bench to read them")


def test_older_telemetry_schema_version_is_skipped_with_reason(tmp_path):
    append(tmp_path, rec(telemetry={"schema_version": "0.9", "metrics": {}}))
    read = read_store(tmp_path)
    assert read.records == []
    assert list(read.skipped.files.values()) == [
        ("older", "telemetry schema_version '0.9'; this plugin reads '1.2'")]


def test_wrong_field_types_are_not_misread(tmp_path):
    p = append(tmp_path, rec())
    d = json.loads(p.read_text())
    d["target_met"] = "yes"
    p.write_text(json.dumps(d))
    read = read_store(tmp_path)
    assert read.records == [] and list(read.skipped.files.values()) == [
        ("wrong_type", "field 'target_met' is \"yes\", not bool")]


def test_a_read_by_commit_or_by_files_reads_only_those(tmp_path):
    clean, dirty, other = rec(1), rec(2, dirty=True), rec(3, commit="beef" * 10)
    paths = [append(tmp_path, r) for r in (clean, dirty, other)]
    ids = lambda read: [r.record_id for r in read.records]     # noqa: E731
    assert ids(read_store(tmp_path, commit="c0ffee")) == [clean.record_id]          # a prefix: clean runs only
    assert ids(read_store(tmp_path, commit=clean.commit)) == [clean.record_id]
    assert ids(read_store(tmp_path, fingerprint="fp2")) == []
    assert ids(read_store(tmp_path / "nowhere", files=paths[1:])) == [dirty.record_id, other.record_id]
