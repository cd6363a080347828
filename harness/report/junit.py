"""JUnit XML properties of a bench instance's runs (pytest's record_property / user_properties): the medians CI
dashboards read, the budget, the verdict."""
from __future__ import annotations

from typing import Any

#: Metrics JUnit XML gets as properties (median over the measured runs).
JUNIT_METRICS = ("execution_time_s", "cpu_time_s", "memory_peak_mb", "ttft_s", "tokens_per_second",
                 "tokens_generated", "claims", "citation_validity")


def properties(result: Any) -> list[tuple[str, Any]]:
    """Key metrics of a BenchResult (run/bench.py) as (name, value) for JUnit XML <property> elements."""
    v = result.verdict
    props: list[tuple[str, Any]] = [("research_bench.profile", result.profile),
                                    ("research_bench.target_met", result.target_met),
                                    ("research_bench.verdict", result.status.upper() if result.status == "unverified"
                                     else result.status),
                                    ("research_bench.runs", v.runs if v is not None and result.measured else 0)]
    if v is not None and (v.contended or v.remeasured):
        props += [("research_bench.contended_runs", v.contended), ("research_bench.remeasured_runs", v.remeasured)]
    if v is not None and v.time_basis:
        props.append(("research_bench.time_basis", v.time_basis))
    for m in JUNIT_METRICS:
        s = result.metric(m)
        if s.median is not None:
            props.append((m, round(s.median, 6)))
            if m == "execution_time_s" and s.n > 1:
                props.append(("execution_time_s_iqr", round(s.iqr, 6)))
    if result.budget is not None:
        props += [("time_budget_s", result.budget.time_upper_s), ("memory_limit_mb", result.budget.memory_mb)]
    if result.messages and not result.target_met:
        props.append(("research_bench.reasons", " | ".join(result.messages)))
    return props
