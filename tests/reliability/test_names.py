"""Names that become paths or keys of stored results follow one pattern (engine/names.py), checked where they
enter: machine ids ($RESEARCH_BENCH_MACHINE_ID), saved names (--research-save), profile names (a profiles file, in
a bench session and in `research-engine profiles`). A bad one is one usage line naming the rule; no record is ever
written outside the results folder."""
from __future__ import annotations

import pytest

from llm_research_bench.engine.names import PATTERN, BadName, check_name
from llm_research_bench.harness.run import environment
from tests.reliability.bad_input import clean, engine_cli, one_line, session_ran

RULE = r"1-80 letters, digits, '\.', '_' or '-', starting with a letter or digit"
#: Names that would escape or hide: the parent, this folder, a root, empty, control characters, hidden.
BAD = ["..", ".", "/", "", "\x01", "a\nb", "_hidden", "../up", "a/b"]
BAD_IDS = ["..", ".", "/", "\x01", "...", "_x"]


def _files(root):
    return {p for p in root.rglob("*") if p.is_file()}


def _session(bench, *extra: str):
    bench.run_bench()
    top = bench.pytester.path.parent
    before = _files(top)
    r = session_ran(bench.run("-m", "quick", *extra))
    return r, _files(top) - before


@pytest.fixture(autouse=True)
def _fresh_machine_info():
    environment.machine_info.cache_clear()
    yield
    environment.machine_info.cache_clear()


def test_the_pattern_refuses_every_name_that_would_escape_or_hide():
    for name in BAD:
        with pytest.raises(BadName, match=RULE):
            check_name(name, "name")
    assert all(PATTERN.fullmatch(n) for n in ("quick", "ci-pool_1", "v1.2", "A"))
    with pytest.raises(BadName, match=r"name 'x{81}' is not a valid name"):
        check_name("x" * 81, "name")


@pytest.mark.parametrize("machine_id", BAD_IDS, ids=ascii)
def test_a_bad_machine_id_is_refused_before_the_run_and_nothing_is_written(bench, monkeypatch, machine_id):
    monkeypatch.setenv("RESEARCH_BENCH_MACHINE_ID", machine_id)
    r, new = _session(bench)
    line = one_line(r, r"^ERROR: \$RESEARCH_BENCH_MACHINE_ID=.* cannot name the machine's results folder", 4)
    assert ascii(machine_id) in line and "unset it to use the detected fingerprint" in line
    assert not new                                       # no record, anywhere


@pytest.mark.parametrize("machine_id", ["", "ci pool/linux", "a\x01b", "ctl-\x01"], ids=ascii)
def test_a_machine_id_that_maps_to_a_name_files_records_inside_the_results_folder(bench, monkeypatch, machine_id):
    monkeypatch.setenv("RESEARCH_BENCH_MACHINE_ID", machine_id)
    r, new = _session(bench)
    clean(r)
    assert r.rc == 0, r.out[-2000:]
    records = [p for p in new if p.suffix == ".json"]
    assert records and all(bench.results in p.parents for p in new)
    folder = {p.relative_to(bench.results).parts[0] for p in records}
    assert folder == {environment.machine_info().fingerprint} and all(PATTERN.fullmatch(f) for f in folder)


def test_a_bad_machine_id_is_a_usage_error_of_every_command(monkeypatch, capsys, tmp_path):
    from tests.reliability.bad_input import bench_cli
    from tests.reliability.test_bad_records import _record
    from llm_research_bench.harness.run import store
    store.append(tmp_path / "results", _record("a" * 40, machine_fingerprint="m1"))
    monkeypatch.setenv("RESEARCH_BENCH_MACHINE_ID", "..")
    r = bench_cli(capsys, "compare", "a" * 12, "a" * 12, "--results-dir", tmp_path / "results")
    one_line(r, r"^compare: \$RESEARCH_BENCH_MACHINE_ID='\.\.' cannot name", 2)


@pytest.mark.parametrize("name", ["..", ".", "/", "\x01", "_hidden", "HEAD", "head", "ORIG_HEAD"], ids=ascii)
def test_a_bad_saved_name_is_refused_at_save_time(bench, name):
    bench.commit("one")
    r, new = _session(bench, f"--research-save={name}")
    line = one_line(r, r"^ERROR: --research-save \(ini research_save\): ", 4)
    assert ("is not a valid name" in line) or ("would hide" in line and "choose another name" in line)
    assert not new


def test_an_empty_saved_name_saves_nothing_under_a_name(bench):
    r, new = _session(bench, "--research-save=")
    clean(r)
    assert r.rc == 0 and all(bench.results in p.parents for p in new)
    assert all(not (x.extra or {}).get("saved_as") for x in bench.records())


@pytest.mark.parametrize("name", ['""', '"_hidden"', '".."', '"/"', '"a\\u0001"', '"."'], ids=ascii)
def test_a_bad_profile_name_is_one_line_in_a_session_and_in_research_engine_profiles(bench, capsys, name):
    f = bench.pytester.path / "bad-profiles.toml"
    f.write_text(f'[profiles.{name}]\ndescription = "x"\n')
    r, new = _session(bench, "--research-profiles-file", str(f))
    line = one_line(r, r"^ERROR: --research-profiles-file \(ini research_profiles_file\): file .*: profile name "
                       r".* is not valid \(" + RULE, 4)
    assert "profile name" in line and not new
    e = engine_cli(capsys, "profiles", "--profiles-file", f)
    assert e.rc == 2 and "Traceback" not in e.err
    assert [x for x in e.err.splitlines() if x.strip()] == [x for x in e.err.splitlines() if "is not valid" in x]


def test_a_bad_machine_id_is_one_line_when_a_baseline_is_asked_for_too(bench, monkeypatch):
    monkeypatch.setenv("RESEARCH_BENCH_MACHINE_ID", "..")
    bench.commit("one")
    r, new = _session(bench, "--research-compare=HEAD")
    one_line(r, r"^ERROR: \$RESEARCH_BENCH_MACHINE_ID='\.\.' cannot name the machine's results folder", 4)
    assert not new
