"""Where results come from: git facts, the machine fingerprint, CPU contention during a run."""
from __future__ import annotations

from llm_research_bench.harness.run import environment as env


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
    from llm_research_bench.harness.run import cpu
    before = cpu.CpuSnapshot(at=0.0, busy_s=100.0, own_s=10.0)
    after = cpu.CpuSnapshot(at=10.0, busy_s=130.0, own_s=30.0)      # 30 busy-seconds, 20 of them ours
    load = cpu.load_between(before, after)
    assert load.other_cores == 1.0 and load.other_share == 1.0 / load.logical
    assert load.contended == (load.logical < 4)
    assert cpu.load_between(before, cpu.CpuSnapshot(0.01, 100.0, 10.0)) is None


def test_metrics_the_report_names_are_in_the_schema():
    from llm_research_bench.harness.analysis.instances import ROW_METRICS
    from llm_research_bench.harness.records import metric_specs
    from llm_research_bench.harness.report.junit import JUNIT_METRICS
    from llm_research_bench.harness.report.terminal import SUMMARY_COMPARE_METRICS
    names = set(metric_specs("telemetry"))
    assert set(ROW_METRICS) | set(JUNIT_METRICS) | set(SUMMARY_COMPARE_METRICS) <= names
