"""Profiles as parameters: parametrization, markers, -m selection, --research-profile, strict markers."""
from __future__ import annotations

import pytest

BENCHES = '''
import pytest

def test_with_fixture(profile):
    assert profile.name in ("quick", "balanced", "thorough")

@pytest.mark.profiles("quick", "balanced")
def test_marker_only(request):
    assert request.node.callspec.params["profile"] in ("quick", "balanced")

@pytest.mark.profiles("thorough")
def test_marker_and_fixture(profile):
    assert profile.name == "thorough"

def test_plain():
    pass

@pytest.mark.micro
def test_micro():
    pass
'''


def _ids(result):
    return sorted(line.split("::", 1)[1] for line in result.outlines if "::" in line and "<" not in line)


def test_every_profile_becomes_an_instance_with_its_marker(bench):
    bench.pytester.makepyfile(test_p=BENCHES)
    r = bench.run("--co", "-q")
    assert _ids(r) == sorted(["test_with_fixture[quick]", "test_with_fixture[balanced]",
                              "test_with_fixture[thorough]", "test_marker_only[quick]",
                              "test_marker_only[balanced]", "test_marker_and_fixture[thorough]", "test_plain",
                              "test_micro"])


def test_dash_m_quick_selects_exactly_the_quick_instances(bench):
    bench.pytester.makepyfile(test_p=BENCHES)
    r = bench.run("--co", "-q", "-m", "quick")
    assert _ids(r) == ["test_marker_only[quick]", "test_with_fixture[quick]"]
    assert bench.run("--co", "-q", "-m", "thorough and not micro").ret == 0


def test_profile_option_limits_the_instances(bench):
    bench.pytester.makepyfile(test_p=BENCHES)
    r = bench.run("--co", "-q", "--research-profile", "balanced,thorough")
    ids = _ids(r)
    assert "test_with_fixture[balanced]" in ids and "test_marker_and_fixture[thorough]" in ids
    assert not any("[quick]" in i for i in ids)


def test_suite_is_clean_under_strict_markers(bench):
    bench.pytester.makepyfile(test_p=BENCHES)
    r = bench.run("-q", "--strict-markers", "-W", "error::pytest.PytestUnknownMarkWarning")
    r.assert_outcomes(passed=8)


def test_profiles_of_a_user_file_get_markers_too(bench):
    f = bench.profiles_file('[profiles.tiny]\ndescription = "a user profile"\ncontext_window = 1024\n'
                            'batch_size = 2\nmin_batch_size = 1\nmax_batch_size = 4\nef_search = 16\n'
                            'retrieve_k = 8\nmax_tokens = 256\nclaim_tokens = 64\nsynthesis_tokens = 64\n'
                            'timeout_s = 10\nnovelty_threshold = 0.1\ncitation_floor = 0.5\n'
                            'models = { llamacpp = "smollm2-135m" }\n'
                            '[profiles.tiny.budgets.linux-x86_64-2c]\ntime_s = [1, 10]\nmemory_mb = 2048\n')
    bench.pytester.makepyfile(test_p=BENCHES)
    r = bench.run("--co", "-q", "--strict-markers", "--research-profiles-file", str(f), "-m", "tiny")
    assert _ids(r) == ["test_with_fixture[tiny]"]


@pytest.mark.parametrize("args,message", [
    (["--research-profile", "fast"],
     "--research-profile (ini research_profile): unknown profile 'fast'; known: quick, balanced, thorough"),
    (["--research-machine-class", "amiga-500"],
     "--research-machine-class (ini research_machine_class): no profile has a budget for 'amiga-500'"),
    (["--research-budget-scale", "0"], "--research-budget-scale (ini research_budget_scale): must be above 0"),
    (["--research-budget-scale", "inf"], "must be a finite number"),
    (["--research-rounds", "0"], "--research-rounds (ini research_rounds): must be at least 1"),
    (["--research-rounds", "many"], "expected a whole number, got 'many'"),
    (["--research-compare-fail", "speed:10%"], "(ini research_compare_fail): 'speed:10%': unknown metric 'speed'"),
    (["--research-compare-fail", "execution_time_s"], "expected METRIC:PCT"),
    (["--research-compare-fail", "tokens_generated:5%"], "has no better direction"),
    (["--research-enforce-memory"], "add --research-isolate"),
])
def test_user_errors_are_one_clear_usage_error(bench, args, message):
    bench.pytester.makepyfile(test_p="def test_x(): pass")
    r = bench.run(*args)
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert message in r.stderr.str()
    assert "Traceback" not in r.stderr.str()


def test_unknown_profile_in_marker_is_named(bench):
    bench.pytester.makepyfile(test_p='import pytest\n@pytest.mark.profiles("fast")\ndef test_x(profile): pass\n')
    r = bench.run("-q")
    assert r.ret != 0
    assert "profiles names unknown profile 'fast'" in r.stdout.str()


def test_a_project_fixture_named_profile_is_left_alone(bench):
    bench.pytester.makepyfile(test_p='import pytest\n@pytest.fixture\ndef profile():\n    return "mine"\n'
                                     'def test_x(profile):\n    assert profile == "mine"\n')
    bench.run("-q").assert_outcomes(passed=1)
