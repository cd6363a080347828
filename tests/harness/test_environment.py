"""Where results come from: git facts, the machine fingerprint, CPU contention during a run."""
from __future__ import annotations

from llm_research_bench.harness import environment as env


def test_git_info_outside_a_repository_falls_back_to_ci_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_SHA", "a" * 40)
    monkeypatch.setenv("GITHUB_REF_NAME", "feature/x")
    g = env.git_info(tmp_path)
    assert g.commit == "a" * 40 and g.dirty is None and g.branch == "feature/x"
    assert g.short == "aaaaaaaaaaaa"


def test_machine_fingerprint_is_stable_filesystem_safe_and_pinnable(monkeypatch):
    env.machine_info.cache_clear()
    try:
        a = env.machine_info().fingerprint
        env.machine_info.cache_clear()
        assert env.machine_info().fingerprint == a
        assert all(c.isalnum() or c in "-_." for c in a)
        monkeypatch.setenv(env.FINGERPRINT_ENV, "ci pool/linux")
        env.machine_info.cache_clear()
        assert env.machine_info().fingerprint == "ci_pool_linux"
    finally:
        env.machine_info.cache_clear()


def test_other_cpu_load_subtracts_our_own_cpu_time():
    before = env.CpuSnapshot(at=0.0, busy_s=100.0, own_s=10.0)
    after = env.CpuSnapshot(at=10.0, busy_s=130.0, own_s=30.0)      # 30 busy-seconds, 20 of them ours
    assert env.other_cpu_load(before, after) == 1.0
    assert env.other_cpu_load(before, env.CpuSnapshot(0.01, 100.0, 10.0)) is None


def test_metrics_the_report_names_are_in_the_schema():
    from llm_research_bench.engine.telemetry import metric_specs
    from llm_research_bench.harness import report
    names = set(metric_specs())
    assert set(report.ROW_METRICS) | set(report.JUNIT_METRICS) | set(report.SUMMARY_COMPARE_METRICS) <= names
