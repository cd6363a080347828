"""TEST DATA for the evaluation/report tests: ResultRecords built from the real telemetry document
tests/data/telemetry_quick.json with numbers deliberately varied (scaled, shifted, a planted regression).

Nothing here is a measurement: every record's machine fingerprint starts with 'TESTDATA-' and every record
carries extra['testdata'] = True, so they can never be mistaken for real results.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

from llm_research_bench.harness.analysis import quality
from llm_research_bench.harness.analysis.quality import QuestionOutcome
from llm_research_bench.harness.records import ResultRecord, current_names

DATA = Path(__file__).resolve().parents[1] / "data" / "telemetry_quick.json"
TESTDATA_MACHINE = "TESTDATA-machine-a"
TESTDATA_OTHER_MACHINE = "TESTDATA-machine-b"
TESTDATA_COMMITS = ["aaaa1111aaaa", "bbbb2222bbbb", "cccc3333cccc", "dddd4444dddd"]
BUDGET = {"machine_class": "linux-x86_64-2c", "time_lower_s": 10.0, "time_upper_s": 45.0, "memory_mb": 4096.0,
          "scale": 1.0, "reference_fallback": False}


def base_telemetry() -> dict:
    """The real document with the current metric names (as a record read from the store holds it)."""
    return current_names({"telemetry": json.loads(DATA.read_text())})["telemetry"]


def varied_telemetry(time_factor: float = 1.0, mem_factor: float = 1.0, **metric_overrides) -> dict:
    """The real document with its time-like metrics (and phases, calls) scaled by time_factor, memory scaled by
    mem_factor, and any metric overridden."""
    t = copy.deepcopy(base_telemetry())
    m = t["metrics"]
    for k in ("execution_time_s", "ttft_s", "tpot_s", "itl_p50_s", "itl_p90_s", "itl_p99_s"):
        if m.get(k) is not None:
            m[k] = m[k] * time_factor
    for k in ("tokens_per_second", "wall_tokens_per_second", "prompt_eval_tokens_per_second"):
        if m.get(k) is not None:
            m[k] = m[k] / time_factor
    for k in ("memory_peak_mb", "ru_maxrss_mb"):
        m[k] = m[k] * mem_factor
    m["memory_efficiency"] = m["memory_peak_mb"] / t["profile"]["memory_limit_mb"]
    t["phases"] = {k: v * time_factor for k, v in t["phases"].items()}
    for c in t["traces"]["calls"]:
        for k in ("ttft_s", "e2e_s", "native_prompt_eval_s", "native_decode_s"):
            if c.get(k) is not None:
                c[k] = c[k] * time_factor
    m.update(metric_overrides)
    return t


def record(telemetry: dict | None, *, commit: str, ts: str, bench: str = "research", profile: str = "quick",
           machine: str = TESTDATA_MACHINE, target_met: bool = True, extra: dict | None = None,
           budget: dict | None = BUDGET) -> ResultRecord:
    return ResultRecord(test_id=f"benches/test_research.py::test_{bench}[{profile}]", bench=bench, profile=profile,
                        outcome="passed" if target_met else "failed", target_met=target_met,
                        machine_fingerprint=machine, machine_class="linux-x86_64-2c", commit=commit, dirty=False,
                        branch="main", telemetry=telemetry, budget=budget,
                        extra={"testdata": True, **(extra or {})}, timestamp=ts)


def _outcomes(arm: str, correct: list[bool], time_s: float, tokens: int, ee_fired: int = 0) -> list[QuestionOutcome]:
    out = []
    for i, ok in enumerate(correct):
        gold = ("yes", "no", "maybe")[i % 3]
        dec = gold if ok else ("no" if gold == "yes" else "yes")
        cited = [f"q{i}:0", f"q{i}:1", f"other{i}:0"] if arm != "closed_book" else []
        out.append(QuestionOutcome(f"q{i}", gold, dec, arm, time_s + i * 0.1, tokens + i, claims=3 if cited else 0,
                                   citations=len(cited) + (1 if cited else 0), valid_cited_ids=cited,
                                   gold_ids=[f"q{i}:0", f"q{i}:1"],
                                   context_ids=[f"q{i}:0", f"z{i}"] if arm != "closed_book" else [],
                                   early_exit_triggered=arm == "retrieval" and i < ee_fired))
    return out


class _Q:
    def __init__(self, i: int):
        self.id, self.answer, self.question = f"q{i}", ("yes", "no", "maybe")[i % 3], f"question {i}?"
        self.gold_passage_ids = (f"q{i}:0", f"q{i}:1")


def quality_summary_testdata(acc_pattern: int = 0) -> dict:
    """A quality summary computed by harness.quality from hand-made outcomes (10 questions)."""
    sample = [_Q(i) for i in range(10)]
    all_q = sample + [type("Q", (), {"answer": "yes", "id": f"y{i}"})() for i in range(8)]
    r = [i % 2 == 0 or i < acc_pattern for i in range(10)]
    cb = [i % 3 == 0 for i in range(10)]
    off = [i % 2 == 0 for i in range(5)]
    return quality.quality_summary(
        {"retrieval": _outcomes("retrieval", r, 20.0, 180, ee_fired=2),
         "closed_book": _outcomes("closed_book", cb, 2.0, 30),
         "retrieval_no_early_exit": _outcomes("retrieval_no_early_exit", off, 24.0, 220)},
        profile="quick", seed=1, sample=sample, all_questions=all_q,
        corpus={"id": "TESTDATA", "passages": 30}, model="TESTDATA-model", backend="llamacpp").as_dict()


def breakdown_testdata() -> tuple[dict, dict]:
    phases = {"kind": "phases", "profile": "quick", "how": "TESTDATA",
              "metrics": {"phase_share_plan": 0.2, "phase_share_evidence_processing": 0.05,
                          "phase_share_streaming_inference": 0.7, "phase_share_synthesis": 0.05,
                          "prompt_eval_share": 0.6, "decode_share": 0.15, "generation_other_share": 0.02}}
    scaling = {"kind": "corpus_scaling", "profile": "quick", "how": "TESTDATA", "x": "passages",
               "series": [{"passages": 1000, "index_build_s": 10.0, "research_s": 18.0, "memory_peak_mb": 900.0},
                          {"passages": 3000, "index_build_s": 29.0, "research_s": 19.0, "memory_peak_mb": 950.0},
                          {"passages": 10000, "index_build_s": 95.0, "research_s": 21.0, "memory_peak_mb": 1100.0}],
               "metrics": {"index_build_s_per_1k_passages": 9.4, "memory_mb_per_1k_passages": 22.0,
                           "embed_passages_per_second": 105.0, "search_ms_largest": 0.8,
                           "research_time_ratio_largest_smallest": 1.17}}
    return phases, scaling


def history_records() -> list[ResultRecord]:
    """4 commits x 3 runs of research[quick]; the third commit carries a planted time regression (x1.6) and one
    run over budget; a quality record and two breakdown records on the last commit; one record of another
    machine (must be left out of the report/exports of this machine)."""
    recs = []
    factors = {0: [1.00, 1.02, 0.98], 1: [0.97, 0.99, 1.01], 2: [1.60, 1.62, 2.60], 3: [1.0, 1.01, 0.99]}
    for ci, commit in enumerate(TESTDATA_COMMITS):
        for k, f in enumerate(factors[ci]):
            tel = varied_telemetry(f, 1.0 + 0.01 * k)
            over = tel["metrics"]["execution_time_s"] > BUDGET["time_upper_s"]
            recs.append(record(tel, commit=commit, ts=f"2026-11-2{ci}T10:0{k}:00.000000+00:00", target_met=not over))
    last = TESTDATA_COMMITS[-1]
    recs.append(record(None, commit=last, ts="2026-11-23T11:00:00.000000+00:00", bench="quality",
                       extra={"quality": quality_summary_testdata()}, budget=None))
    ph, sc = breakdown_testdata()
    recs.append(record(None, commit=last, ts="2026-11-23T11:10:00.000000+00:00", bench="breakdown_phases",
                       extra={"breakdown": ph}, budget=None))
    recs.append(record(None, commit=last, ts="2026-11-23T11:20:00.000000+00:00", bench="breakdown_corpus_scaling",
                       extra={"breakdown": sc}, budget=None))
    recs.append(record(varied_telemetry(5.0), commit="eeee5555eeee", ts="2026-11-01T00:00:00.000000+00:00",
                       machine=TESTDATA_OTHER_MACHINE))
    return recs
