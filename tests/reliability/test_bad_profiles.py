"""Bad profiles and profiles files, in the engine CLI and in a bench session: numbers that are not finite or out
of range, a context above the model's trained one, files that are not TOML. One usage error each, never an
OverflowError or a traceback."""
from __future__ import annotations

import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_research_bench.engine.profiles import MAX_CONTEXT, ProfileError, load_profiles
from tests.reliability.bad_input import clean, engine_cli, one_line, run_args, session_ran


BAD_PROFILE_VALUES = [
    ("timeout_s = inf", "timeout_s", "must be a finite number, got inf"),
    ("timeout_s = nan", "timeout_s", "must be a finite number"),
    ("timeout_s = 1e300", "timeout_s", r"must be > 0 and <= 86400"),
    ("timeout_s = 0", "timeout_s", r"must be > 0"),
    ("novelty_threshold = nan", "novelty_threshold", "must be a finite number, got nan"),
    ("novelty_threshold = 1.5", "novelty_threshold", r"must be >= 0 and <= 1"),
    ("citation_floor = -inf", "citation_floor", "must be a finite number"),
    ("context_window = 9999999999999", "context_window", r"must be between 512 and 1,048,576"),
    ("batch_size = 0", "batch_size", r"must be between 1 and"),
    ("ef_search = 99999999999999999999", "ef_search", r"must be between 1 and"),
    ("budgets.linux-x86_64-2c.time_s = [0, inf]", r"budgets\.linux-x86_64-2c\.time_s", "must be a finite number"),
    ("budgets.linux-x86_64-2c.memory_mb = nan", r"budgets\.linux-x86_64-2c\.memory_mb", "must be a finite number"),
    ("budgets.linux-x86_64-2c.memory_mb = 1e30", r"budgets\.linux-x86_64-2c\.memory_mb", r"must be > 0 and <="),
]


@pytest.mark.parametrize("line,key,msg", BAD_PROFILE_VALUES, ids=[v[0] for v in BAD_PROFILE_VALUES])
def test_profile_numbers_must_be_finite_and_in_range_engine_cli(capsys, tmp_path, line, key, msg):
    f = tmp_path / "p.toml"
    f.write_text(f"[profiles.quick]\n{line}\n")
    one_line(engine_cli(capsys, "--profiles-file", f, "profiles"), rf"^error: file .*p\.toml, profile 'quick', "
                                                                   rf"key '{key}': {msg}", 2)


def test_context_above_the_models_trained_context_is_refused_before_loading(capsys, corpus_file, tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("[profiles.quick]\ncontext_window = 16384\n")       # SmolLM2-135M was trained on 8,192
    r = engine_cli(capsys, "--profiles-file", f, *run_args(corpus_file, "--telemetry-out", tmp_path / "t.json"))
    one_line(r, r"^error: the profile's context_window 16,384 is larger than the 8,192-token context "
                r"smollm2-135m was trained on: set context_window <= 8,192", 2)
    assert json.loads((tmp_path / "t.json").read_text())["success"] is False


def test_the_trained_context_is_read_from_the_gguf_header_and_garbage_gives_none(tmp_path):
    from llm_research_bench.engine.backends.llamacpp import gguf_context_length
    from llm_research_bench.engine.backends.registry import resolve_model
    assert gguf_context_length(resolve_model("smollm2-135m")[0]) == 8192
    assert gguf_context_length(resolve_model("gemma3-270m")[0]) == 32768
    for i, junk in enumerate([b"", b"GGUF", b"GGUF\x03\x00\x00\x00" + b"\xff" * 64, os.urandom(4096)]):
        (tmp_path / f"{i}.gguf").write_bytes(junk)
        assert gguf_context_length(tmp_path / f"{i}.gguf") is None


@pytest.mark.parametrize("kind", ["folder", "fifo", "binary", "missing"])
def test_profiles_file_that_is_not_a_toml_file_engine_cli(capsys, tmp_path, kind):
    f = tmp_path / "p.toml"
    if kind == "folder":
        f.mkdir()
    elif kind == "fifo":
        os.mkfifo(f)
    elif kind == "binary":
        f.write_bytes(b"\xff\xfe\x00garbage")
    r = engine_cli(capsys, "--profiles-file", f, "profiles")
    one_line(r, rf"^error: file {re.escape(str(f))}: (cannot be read|not UTF-8 text|file not found)", 2)


@pytest.mark.parametrize("line,key", [(v[0], v[1]) for v in BAD_PROFILE_VALUES[:9]],
                         ids=[v[0] for v in BAD_PROFILE_VALUES[:9]])
def test_profile_numbers_in_a_bench_session_are_a_usage_error_not_an_overflow(bench, line, key):
    f = bench.profiles_file(f"[profiles.quick]\n{line}\n")
    bench.run_bench()
    r = clean(session_ran(bench.run("-m", "quick", "--research-profiles-file", str(f))))
    assert r.rc == 4, r.out[-2000:]
    errs = [x for x in r.err.splitlines() if x.startswith("ERROR:")]
    assert len(errs) == 1 and re.search(rf"--research-profiles-file .*key '{key}'", errs[0]), r.err
    assert "OverflowError" not in r.out + r.err


@pytest.mark.parametrize("kind", ["folder", "fifo", "binary"])
@pytest.mark.timeout(60)
def test_profiles_file_that_is_not_toml_in_a_bench_session(bench, kind):
    f = bench.pytester.path / "p.toml"
    {"folder": f.mkdir, "fifo": lambda: os.mkfifo(f), "binary": lambda: f.write_bytes(b"\xff\x00")}[kind]()
    bench.run_bench()
    r = clean(session_ran(bench.run("-m", "quick", "--research-profiles-file", str(f))))
    assert r.rc == 4
    errs = [x for x in r.err.splitlines() if x.startswith("ERROR:")]
    assert len(errs) == 1 and errs[0].startswith("ERROR: --research-profiles-file (ini research_profiles_file): file ")


profile_numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**70, 2**70))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60, deadline=None)
@given(key=st.sampled_from(["context_window", "batch_size", "max_batch_size", "ef_search", "retrieve_k", "timeout_s",
                            "novelty_threshold", "citation_floor"]), value=profile_numbers)
def test_any_number_in_a_profile_is_refused_or_finite_and_in_range(tmp_path_factory, key, value):
    f = tmp_path_factory.mktemp("p") / "p.toml"
    toml = repr(value) if isinstance(value, int) else {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(
        repr(value), repr(value))
    f.write_text(f"[profiles.quick]\n{key} = {toml}\n")
    try:
        prof = load_profiles(f)["quick"]
    except ProfileError as e:
        assert "\n" not in str(e) and f"key '{key}'" in str(e)
        return
    v = getattr(prof, key)
    assert v == v and abs(v) != float("inf")
    assert prof.timeout_s <= 86400 and 0 <= prof.novelty_threshold <= 1 and prof.context_window <= MAX_CONTEXT
