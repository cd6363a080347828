"""A bench session's bad options and runs: a summary file that is a folder; an isolated run's memory limit counts
the run, not the child's start-up; an interrupted run is never called under budget."""
from __future__ import annotations

import json

import pytest

from llm_research_bench.harness.run import isolated
from llm_research_bench.harness.run.verdicts import BudgetSpec, evaluate
from tests.reliability.bad_input import DATA, clean, session_ran


def test_summary_md_a_folder_is_a_usage_error(bench):
    bench.run_bench()
    r = clean(session_ran(bench.run("-m", "quick", "--research-summary-md", str(bench.pytester.path))))
    assert r.rc == 4 and "--research-summary-md (ini research_summary_md): " in r.err and "is a folder" in r.err


# -- isolated runs: memory counted for the run --------------------------------------------------------------------------
@pytest.mark.parametrize("startup_mb,run_mb,killed", [(300, 0, False), (0, 300, True)],
                         ids=["big-start-up-small-run", "small-start-up-big-run"])
def test_enforce_memory_counts_the_run_not_the_childs_start_up(monkeypatch, tmp_path, startup_mb, run_mb, killed):
    monkeypatch.setattr(isolated, "CHILD_MODULE", "tests.reliability.child_double")
    monkeypatch.setenv("RB_CHILD_STARTUP_MB", str(startup_mb))
    monkeypatch.setenv("RB_CHILD_RUN_MB", str(run_mb))
    sup = isolated.supervise({"kind": "research"}, timeout_s=30, workdir=tmp_path, enforce_memory_mb=200,
                             startup_timeout_s=30)
    check = sup.memory_check
    assert check["run_started"] is True and "start-up and warm-up not counted" in check["counted"]
    if killed:
        assert sup.killed_by and "during the run exceeded the 200 MB limit" in sup.killed_by
        assert "--research-enforce-memory counts the run's process-tree RSS from the run's start" in sup.killed_by
    else:
        assert sup.killed_by is None and sup.result["status"] == "completed", sup.cause
        assert check["startup_peak_mb"] >= 250 and sup.peak_mb < 200


def test_an_interrupted_run_is_never_called_under_budget():
    tel = json.loads(DATA.read_text())
    tel["success"], tel["metrics"]["execution_time_s"] = False, 0.8
    budget = BudgetSpec(profile="quick", machine_class="linux-x86_64-2c", time_lower_s=10, time_upper_s=45,
                        memory_mb=4096, timeout_s=45)
    v = evaluate(tel, budget, schema_errors=[], run_error="KeyboardInterrupt")
    assert v.time_status == "incomplete" and not any("under budget" in n for n in v.notes)
    tel["success"] = True
    assert evaluate(tel, budget, schema_errors=[]).time_status == "under"
